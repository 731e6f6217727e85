"""The analytic model, pure: units, formats, the architecture description, the cost formulas, the step,
the roofline, device records and the expected time. Imports nothing above it."""
