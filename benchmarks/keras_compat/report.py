"""Per-example pass/fail lines and totals, shared by the two runners."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class Results:
    title: str
    rows: list = dataclasses.field(default_factory=list)

    def add(self, name: str, passed: bool, error: str = "") -> None:
        first_line = next((line for line in str(error).splitlines() if line.strip()), "")
        self.rows.append((name, passed, first_line[:220]))

    def print(self) -> None:
        for name, passed, error in self.rows:
            print(f"{'PASS' if passed else 'FAIL'}  {name}" + (f"  -- {error}" if error else ""))
        passed = sum(1 for _, ok, _ in self.rows if ok)
        print(f"\n{self.title}: {passed} of {len(self.rows)} pass")
