"""Metric logging: one CSV row per step (every metric a column) and TensorBoard scalars."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any


class MetricLogger:
    """Writes ``metrics.csv`` (and TensorBoard event files) under ``out_dir``.

    Columns are fixed by the first row; a metric first seen later extends the header and the file
    is rewritten, so the CSV always has one column per metric name.

    Args:
        out_dir: Directory of the run.
        tensorboard: Also write TensorBoard scalars (needs the ``tensorboard`` package).
        resume_step: When resuming, rows with ``step > resume_step`` are dropped from an existing
            CSV so that the resumed run appends exactly where the checkpoint was taken.
    """

    def __init__(self, out_dir: str | Path, *, tensorboard: bool = True, resume_step: int | None = None) -> None:
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "metrics.csv"
        self.rows: list[dict[str, Any]] = []
        self.columns: list[str] = []
        if resume_step is not None and self.path.is_file():
            with self.path.open(newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                self.columns = list(reader.fieldnames or [])
                self.rows = [r for r in reader if float(r["step"]) <= resume_step]
            self._rewrite()
        elif self.path.exists():
            self.path.unlink()
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(self.dir / "tb"))

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """Append one row (``step`` first) and the scalars."""
        row = {"step": step, **metrics}
        new = [k for k in row if k not in self.columns]
        self.rows.append(row)
        if new:
            self.columns += new
            self._rewrite()
        else:
            with self.path.open("a", newline="", encoding="utf-8") as fh:
                csv.DictWriter(fh, fieldnames=self.columns, restval="").writerow(row)
        if self.writer is not None:
            for key, value in metrics.items():
                if isinstance(value, int | float) and not math.isnan(float(value)):
                    self.writer.add_scalar(key, float(value), step)

    def _rewrite(self) -> None:
        with self.path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.columns, restval="")
            writer.writeheader()
            writer.writerows(self.rows)

    def close(self) -> None:
        """Flush and close TensorBoard."""
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
