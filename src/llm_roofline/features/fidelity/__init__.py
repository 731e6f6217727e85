"""features/fidelity"""
