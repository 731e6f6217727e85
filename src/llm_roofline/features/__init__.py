"""What users ask, built on the core: studies, deployments, sweeps, measurement, fidelity."""
