"""Beat schedule and the periodic work it drives: durable-delay mover, dead-letter retention."""
