/* Types of the generated world data (build/world_data.c, from world.json). */
#ifndef WORLD_H
#define WORLD_H
#include <stdint.h>

typedef struct { uint8_t x, y, map, dx, dy; } Warp;
/* arg: trainer id for trainers/leaders, required badge bits for guards. Text lines end with '\n'. */
typedef struct { uint8_t x, y, kind, arg; const char *text; const char *after; } Npc;
typedef struct { uint8_t species, lmin, lmax; } Encounter;
typedef struct {
  uint8_t w, h;
  const uint8_t *cells;
  uint8_t nwarps;
  const Warp *warps;
  uint8_t nnpcs;
  const Npc *npcs;
  uint8_t nenc;
  const Encounter *enc;
} MapDef;
typedef struct {
  const char *name;
  uint8_t hp, atk, def, spd, base_exp, catch_rate;
  const char *move;
} Species;
typedef struct {
  const char *name;
  uint8_t count;
  uint8_t species[6];
  uint8_t level[6];
  uint16_t money;
  uint8_t badge; /* 0xFF: not a leader. */
  const char *badge_name;
} Trainer;

#endif
