"""Game Boy environments: emulator, RAM maps, games, rewards, collection, replay, demonstrations."""
