"""tinymon, the project's own Game Boy RPG, on the Python side: its world data and its scripted player (expert)."""
