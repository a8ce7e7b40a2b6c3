"""Live trading: engine, brokers, safety, durability, scheduling."""
