"""``ToolGym/Lookup-v0``: pointer-chasing key-value lookup, the cheap env of the collapse study."""
