"""faces/report"""
