"""``ToolGym/Calc-v0``: multi-step arithmetic word problems solved with a safe calculator tool."""
