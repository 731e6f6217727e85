"""The chapter's analyses, built on the core analyzer (they reuse its formulas, never copy them)."""
