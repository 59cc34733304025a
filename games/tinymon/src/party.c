/* The party: stats from species and level, experience, healing, money, dex and event bits. */
#include "game.h"

#define MAX_LEVEL 60

uint16_t calc_stat(uint8_t base, uint8_t level) {
  return (uint16_t)((uint16_t)base * 2 * level / 100 + 5);
}

uint16_t calc_hp(uint8_t base, uint8_t level) {
  return (uint16_t)((uint16_t)base * 2 * level / 100 + level + 10);
}

/* Experience needed to reach `level`: 4/5 of level cubed (a fast growth curve). */
uint32_t exp_for_level(uint8_t level) {
  uint32_t l = level;
  return l * l * l * 4 / 5;
}

/* Sets species, level and stats; current HP moves by as much as max HP changes. */
void set_mon_stats(PartyMon *mon, uint8_t species_id, uint8_t level) {
  const Species *s = &species[species_id];
  uint16_t old_max = get16(mon->max_hp);
  uint16_t new_max = calc_hp(s->hp, level);
  uint16_t hp = get16(mon->hp);
  mon->species = species_id;
  mon->level = level;
  mon->box_level = level;
  mon->catch_rate = s->catch_rate;
  put16(mon->max_hp, new_max);
  put16(mon->attack, calc_stat(s->atk, level));
  put16(mon->defense, calc_stat(s->def, level));
  put16(mon->speed, calc_stat(s->spd, level));
  put16(mon->special, calc_stat(s->atk, level));
  if (hp) put16(mon->hp, (uint16_t)(hp + new_max - old_max));
}

void add_party_mon(uint8_t species_id, uint8_t level) {
  PartyMon *mon;
  uint32_t exp = exp_for_level(level);
  uint8_t i;
  if (wPartyCount >= 6) return;
  mon = &wPartyMon[wPartyCount];
  for (i = 0; i < sizeof(PartyMon); i++) ((uint8_t *)mon)[i] = 0;
  set_mon_stats(mon, species_id, level);
  put16(mon->hp, get16(mon->max_hp));
  mon->exp[0] = (uint8_t)(exp >> 16);
  mon->exp[1] = (uint8_t)(exp >> 8);
  mon->exp[2] = (uint8_t)exp;
  mon->moves[0] = 1;
  mon->pp[0] = 30;
  mon->ot_id[0] = 0x12;
  mon->ot_id[1] = 0x34;
  wPartySpecies[wPartyCount] = species_id;
  wPartyCount++;
  wPartySpecies[wPartyCount] = 0xFF;
}

void heal_party(void) {
  uint8_t i;
  for (i = 0; i < wPartyCount; i++) {
    wPartyMon[i].hp[0] = wPartyMon[i].max_hp[0];
    wPartyMon[i].hp[1] = wPartyMon[i].max_hp[1];
    wPartyMon[i].status = 0;
  }
}

/* The first party slot with HP left, or 0xFF. */
uint8_t first_healthy(void) {
  uint8_t i;
  for (i = 0; i < wPartyCount; i++) {
    if (wPartyMon[i].hp[0] | wPartyMon[i].hp[1]) return i;
  }
  return 0xFF;
}

static uint32_t money_value(void) {
  uint32_t v = 0;
  uint8_t i;
  for (i = 0; i < 3; i++) v = v * 100 + (wPlayerMoney[i] >> 4) * 10 + (wPlayerMoney[i] & 0x0F);
  return v;
}

static void set_money(uint32_t v) {
  int8_t i;
  uint8_t two;
  if (v > 999999) v = 999999;
  for (i = 2; i >= 0; i--) {
    two = (uint8_t)(v % 100);
    wPlayerMoney[i] = (uint8_t)(((two / 10) << 4) | (two % 10));
    v /= 100;
  }
}

void add_money(uint16_t amount) { set_money(money_value() + amount); }

void halve_money(void) { set_money(money_value() / 2); }

void set_dex_bit(uint8_t *field, uint8_t species_id) {
  uint8_t n = (uint8_t)(species_id - 1);
  field[n >> 3] |= (uint8_t)(1 << (n & 7));
}

uint8_t event_set(uint8_t event) { return (wEventFlags[event >> 3] >> (event & 7)) & 1; }

void set_event(uint8_t event) { wEventFlags[event >> 3] |= (uint8_t)(1 << (event & 7)); }
