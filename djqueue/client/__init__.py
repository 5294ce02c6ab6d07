"""What a project's code calls: task definitions, signatures and canvas, results,
sending by name and running eagerly."""
