"""Retrieval evaluation: questions (`question_set`), scoring (`measures`), runs (`runs`).

Left out: the datasets DocChat is measured on (rag/datasets/), and re-exports.
"""
