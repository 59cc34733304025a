/* Battles: wild and trainer, one attack per mon, balls, running, experience, fainting, blackout.
 *
 * The battle screen uses the background only (no scrolling): the enemy at the top right, the active
 * party mon at the left, and a 5-row box at the bottom for messages and the FIGHT/BALL/RUN menu. */
#include "game.h"

#define BOX (BG_MAP + 13 * 32)
#define ENEMY_TILES ((uint8_t)SPECIES_TILE_BASE)
#define PLAYER_TILES ((uint8_t)(SPECIES_TILE_BASE + 16))
#define MAX_LEVEL 60
#define MOVE_POWER 80

#define TURN_ON 0
#define TURN_ENEMY_FAINTED 1
#define TURN_PLAYER_FAINTED 2

static const Trainer *tr;
static uint8_t enemy_index;
static uint16_t e_atk, e_def, e_spd;

static PartyMon *active(void) { return &wPartyMon[wBattleMonIndex]; }

static void say(void) {
  wBattlePhase = 1;
  text_box(BOX, msgbuf);
  wBattlePhase = 0;
}

static void draw_sprite(uint8_t col, uint8_t row, uint8_t tile) {
  uint8_t x, y;
  for (y = 0; y < 4; y++) {
    for (x = 0; x < 4; x++) BG_MAP[(uint16_t)(row + y) * 32 + col + x] = (uint8_t)(tile + y * 4 + x);
  }
}

static void hp_text(const uint8_t *hp, const uint8_t *max_hp) {
  msg_str("HP ");
  msg_num(get16(hp));
  msg_chr('/');
  msg_num(get16(max_hp));
}

static void pad_to(uint8_t n) {
  uint8_t len = 0;
  while (msgbuf[len]) len++;
  while (len++ < n) msg_chr(' ');
}

/* An HP bar of BAR_TILES tiles at `dst`, filled in proportion to hp / max_hp. */
#define BAR_TILES 6
static void hp_bar(uint8_t *dst, const uint8_t *hp, const uint8_t *max_hp) {
  char bar[BAR_TILES];
  uint16_t max = get16(max_hp);
  uint8_t px = max ? (uint8_t)(get16(hp) * (BAR_TILES * 8) / max) : 0, i;
  if (!px && (hp[0] | hp[1])) px = 1;
  for (i = 0; i < BAR_TILES; i++) {
    bar[i] = (char)(TILE_BAR + (px >= 8 ? 8 : px));
    px = px >= 8 ? (uint8_t)(px - 8) : 0;
  }
  queue_row(dst, bar, BAR_TILES);
}

/* The name/level/HP rows and HP bars of both mons, around the sprites. */
static void status_rows(void) {
  msg_clear();
  msg_chr(' ');
  msg_str(species[wEnemySpecies].name);
  pad_to(11);
  msg_chr('L');
  msg_num(wEnemyMonLevel);
  pad_to(14);
  queue_row(BG_MAP + 1 * 32, msgbuf, 14);
  msg_clear();
  msg_chr(' ');
  hp_text(wEnemyMonHP, wEnemyMonMaxHP);
  pad_to(14);
  queue_row(BG_MAP + 2 * 32, msgbuf, 14);
  hp_bar(BG_MAP + 3 * 32 + 4, wEnemyMonHP, wEnemyMonMaxHP);
  msg_clear();
  msg_str(species[active()->species].name);
  pad_to(10);
  msg_chr('L');
  msg_num(wBattleMonLevel);
  pad_to(13);
  queue_row(BG_MAP + 8 * 32 + 7, msgbuf, 13);
  msg_clear();
  hp_text(wBattleMonHP, wBattleMonMaxHP);
  pad_to(13);
  queue_row(BG_MAP + 9 * 32 + 7, msgbuf, 13);
  hp_bar(BG_MAP + 10 * 32 + 10, wBattleMonHP, wBattleMonMaxHP);
}

static void redraw(void) {
  lcd_off();
  vram_fill(BG_MAP, ' ', 32 * 18);
  vram_copy(VRAM_TILES + ENEMY_TILES * 16, gfx_species[wEnemySpecies - 1], 256);
  vram_copy(VRAM_TILES + PLAYER_TILES * 16, gfx_species[active()->species - 1], 256);
  draw_sprite(14, 1, ENEMY_TILES);
  draw_sprite(2, 6, PLAYER_TILES);
  SCX = 0;
  SCY = 0;
  LCDC = LCDC_ON | LCDC_TILES_8000 | LCDC_BG_ON;
  box_open(BOX);
  status_rows();
  wait_jobs();
}

static void set_enemy(uint8_t sp, uint8_t lv) {
  const Species *s = &species[sp];
  uint16_t hp = calc_hp(s->hp, lv);
  wEnemySpecies = sp;
  wEnemyMonLevel = lv;
  put16(wEnemyMonMaxHP, hp);
  put16(wEnemyMonHP, hp);
  e_atk = calc_stat(s->atk, lv);
  e_def = calc_stat(s->def, lv);
  e_spd = calc_stat(s->spd, lv);
  set_dex_bit(wPokedexSeen, sp);
}

static void set_battle_mon(uint8_t slot) {
  PartyMon *mon = &wPartyMon[slot];
  wBattleMonIndex = slot;
  wBattleMonHP[0] = mon->hp[0];
  wBattleMonHP[1] = mon->hp[1];
  wBattleMonLevel = mon->level;
  wBattleMonMaxHP[0] = mon->max_hp[0];
  wBattleMonMaxHP[1] = mon->max_hp[1];
}

static uint16_t damage(uint8_t level, uint16_t atk, uint16_t def) {
  uint32_t d = (uint32_t)((uint16_t)level * 2 / 5 + 2) * MOVE_POWER * atk / def / 50 + 2;
  d = d * (217 + rand8() % 39) / 255;
  return d ? (uint16_t)d : 1;
}

static void used_move(uint8_t enemy, uint8_t sp) {
  msg_clear();
  if (enemy) msg_str("ENEMY ");
  msg_str(species[sp].name);
  msg_str("\nUSED ");
  msg_str(species[sp].move);
  msg_chr('!');
  say();
}

/* Subtracts damage from a big-endian HP field; returns 1 when it reaches 0. */
static uint8_t hurt(uint8_t *hp, uint16_t dmg) {
  uint16_t v = get16(hp);
  v = v > dmg ? v - dmg : 0;
  put16(hp, v);
  return v == 0;
}

static uint8_t player_attacks(void) {
  uint8_t fainted;
  PartyMon *mon = active();
  used_move(0, mon->species);
  fainted = hurt(wEnemyMonHP, damage(mon->level, get16(mon->attack), e_def));
  status_rows();
  return fainted;
}

static uint8_t enemy_attacks(void) {
  uint8_t fainted;
  PartyMon *mon = active();
  used_move(1, wEnemySpecies);
  fainted = hurt(wBattleMonHP, damage(wEnemyMonLevel, e_atk, get16(mon->defense)));
  mon->hp[0] = wBattleMonHP[0];
  mon->hp[1] = wBattleMonHP[1];
  status_rows();
  return fainted;
}

static uint8_t fight_turn(void) {
  if (get16(active()->speed) >= e_spd) {
    if (player_attacks()) return TURN_ENEMY_FAINTED;
    if (enemy_attacks()) return TURN_PLAYER_FAINTED;
  } else {
    if (enemy_attacks()) return TURN_PLAYER_FAINTED;
    if (player_attacks()) return TURN_ENEMY_FAINTED;
  }
  return TURN_ON;
}

static void gain_exp(void) {
  PartyMon *mon = active();
  uint16_t gain = (uint16_t)((uint16_t)species[wEnemySpecies].base_exp * wEnemyMonLevel / 5);
  uint32_t exp = ((uint32_t)mon->exp[0] << 16) | ((uint16_t)mon->exp[1] << 8) | mon->exp[2];
  if (tr) gain = gain * 3 / 2;
  exp += gain;
  mon->exp[0] = (uint8_t)(exp >> 16);
  mon->exp[1] = (uint8_t)(exp >> 8);
  mon->exp[2] = (uint8_t)exp;
  msg_clear();
  msg_str(species[mon->species].name);
  msg_str(" GAINED\n");
  msg_num(gain);
  msg_str(" EXP!");
  say();
  while (mon->level < MAX_LEVEL && exp >= exp_for_level((uint8_t)(mon->level + 1))) {
    set_mon_stats(mon, mon->species, (uint8_t)(mon->level + 1));
    set_battle_mon(wBattleMonIndex);
    status_rows();
    msg_clear();
    msg_str(species[mon->species].name);
    msg_str(" GREW\nTO LEVEL ");
    msg_num(mon->level);
    msg_chr('!');
    say();
  }
}

/* Returns 1 when the battle is over (the player won). */
static uint8_t enemy_fainted(void) {
  msg_clear();
  msg_str("ENEMY ");
  msg_str(species[wEnemySpecies].name);
  msg_str("\nFAINTED!");
  say();
  gain_exp();
  if (!tr) return 1;
  if (++enemy_index < tr->count) {
    set_enemy(tr->species[enemy_index], tr->level[enemy_index]);
    redraw();
    msg_clear();
    msg_str(tr->name);
    msg_str(" SENT\nOUT ");
    msg_str(species[wEnemySpecies].name);
    msg_chr('!');
    say();
    return 0;
  }
  msg_clear();
  msg_str("YOU DEFEATED\n");
  msg_str(tr->name);
  msg_chr('!');
  say();
  add_money(tr->money);
  msg_clear();
  msg_str("YOU GOT $");
  msg_num(tr->money);
  msg_str("\nFOR WINNING!");
  say();
  set_event(wTrainerId);
  if (tr->badge != 0xFF) {
    wObtainedBadges |= (uint8_t)(1 << tr->badge);
    msg_clear();
    msg_str("YOU GOT THE\n");
    msg_str(tr->badge_name);
    msg_chr('!');
    say();
  }
  return 1;
}

/* Returns 1 when the next mon comes out, 0 on a blackout. */
static uint8_t player_fainted(void) {
  uint8_t next;
  msg_clear();
  msg_str(species[active()->species].name);
  msg_str("\nFAINTED!");
  say();
  next = first_healthy();
  if (next == 0xFF) {
    wIsInBattle = 0xFF;
    msg_clear();
    msg_str("NO MONS LEFT...\nYOU BLACKED OUT!");
    say();
    return 0;
  }
  set_battle_mon(next);
  redraw();
  msg_clear();
  msg_str("GO! ");
  msg_str(species[active()->species].name);
  msg_chr('!');
  say();
  return 1;
}

/* Returns 1 when the ball caught the enemy. */
static uint8_t throw_ball(void) {
  uint16_t max_hp = get16(wEnemyMonMaxHP), hp = get16(wEnemyMonHP);
  uint32_t chance = (uint32_t)species[wEnemySpecies].catch_rate * (3u * max_hp - 2u * hp) / (3u * max_hp);
  wBallCount--;
  msg_clear();
  msg_str("YOU THREW\nA BALL!");
  say();
  if (rand8() >= chance) {
    msg_clear();
    msg_str("OH NO! IT BROKE\nFREE!");
    say();
    return 0;
  }
  set_dex_bit(wPokedexOwned, wEnemySpecies);
  msg_clear();
  msg_str("GOTCHA! ");
  msg_str(species[wEnemySpecies].name);
  msg_str("\nWAS CAUGHT!");
  say();
  if (wPartyCount < 6) {
    add_party_mon(wEnemySpecies, wEnemyMonLevel);
    wPartyMon[wPartyCount - 1].hp[0] = wEnemyMonHP[0];
    wPartyMon[wPartyCount - 1].hp[1] = wEnemyMonHP[1];
  } else {
    msg_clear();
    msg_str("YOUR PARTY IS\nFULL. IT WENT HOME.");
    say();
  }
  return 1;
}

static uint8_t choose_action(void) {
  uint8_t choice;
  box_line(BOX, 1, " FIGHT");
  msg_clear();
  msg_str(" BALL (");
  msg_num(wBallCount);
  msg_chr(')');
  box_line(BOX, 2, msgbuf);
  box_line(BOX, 3, " RUN");
  wBattleCursor = 0;
  wBattlePhase = 2;
  choice = menu_choose(BOX, 3, &wBattleCursor, 0);
  wBattlePhase = 0;
  return choice;
}

static void note(const char *text) {
  msg_clear();
  msg_str(text);
  say();
}

/* One whole battle. trainer_id 0xFF = wild (species_id, level). Returns 0 on a blackout. */
uint8_t battle(uint8_t trainer_id, uint8_t species_id, uint8_t level) {
  uint8_t outcome, result = 1;
  wGameMode = MODE_BATTLE;
  wTrainerId = trainer_id;
  tr = trainer_id == 0xFF ? 0 : &trainers[trainer_id];
  wIsInBattle = tr ? 2 : 1;
  enemy_index = 0;
  if (tr) set_enemy(tr->species[0], tr->level[0]);
  else set_enemy(species_id, level);
  set_battle_mon(first_healthy());
  redraw();
  msg_clear();
  if (tr) {
    msg_str(tr->name);
    msg_str(" WANTS\nTO BATTLE!");
    say();
    msg_clear();
    msg_str(tr->name);
    msg_str(" SENT\nOUT ");
  } else {
    msg_str("A WILD ");
    msg_str(species[wEnemySpecies].name);
    msg_str("\nAPPEARED!");
  }
  if (tr) {
    msg_str(species[wEnemySpecies].name);
    msg_chr('!');
  }
  say();
  msg_clear();
  msg_str("GO! ");
  msg_str(species[active()->species].name);
  msg_chr('!');
  say();
  for (;;) {
    outcome = TURN_ON;
    switch (choose_action()) {
      case 0:
        outcome = fight_turn();
        break;
      case 1:
        if (tr) {
          note("YOU CAN'T CATCH\nA TRAINER'S MON!");
        } else if (!wBallCount) {
          note("YOU HAVE NO\nBALLS LEFT!");
        } else if (throw_ball()) {
          goto done;
        } else if (enemy_attacks()) {
          outcome = TURN_PLAYER_FAINTED;
        }
        break;
      default:
        if (tr) {
          note("NO RUNNING FROM\nA TRAINER BATTLE!");
        } else {
          note("GOT AWAY SAFELY!");
          goto done;
        }
        break;
    }
    if (outcome == TURN_ENEMY_FAINTED && enemy_fainted()) goto done;
    if (outcome == TURN_PLAYER_FAINTED && !player_fainted()) {
      result = 0;
      goto done;
    }
  }
done:
  wIsInBattle = 0;
  wBattlePhase = 0;
  return result;
}
