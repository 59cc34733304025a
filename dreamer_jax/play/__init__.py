"""Watch and play: System 1 in a window beside the world model's forecast and System 2's goals, a
person taking over at any moment, and tinymon played inside the world model's dream."""
