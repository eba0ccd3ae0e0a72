"""Throughput benchmarks: scripts that print a table (see BENCHMARKS.md)."""
