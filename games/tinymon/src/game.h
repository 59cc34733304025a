/* Shared declarations: the RAM mirror (Pokémon Red's addresses, defined in ram.c) and the modules. */
#ifndef GAME_H
#define GAME_H
#include <stdint.h>
#include "hw.h"
#include "world_data.h"

/* One party slot, Pokémon Red's 44-byte layout; multi-byte numbers are big-endian. */
typedef struct {
  uint8_t species;
  uint8_t hp[2];
  uint8_t box_level;
  uint8_t status;
  uint8_t type1, type2, catch_rate;
  uint8_t moves[4];
  uint8_t ot_id[2];
  uint8_t exp[3];
  uint8_t stat_exp[10];
  uint8_t dvs[2];
  uint8_t pp[4];
  uint8_t level;
  uint8_t max_hp[2];
  uint8_t attack[2], defense[2], speed[2], special[2];
} PartyMon;

/* RAM mirror (defined with __at in ram.c, which sees no extern declarations: SDCC rejects both). */
#ifndef DEFINE_RAM
extern uint8_t wCurMap, wYCoord, wXCoord, wObtainedBadges, wPartyCount;
extern uint8_t wPartySpecies[7];
extern PartyMon wPartyMon[6];
extern uint8_t wPokedexOwned[19], wPokedexSeen[19];
extern uint8_t wIsInBattle;
extern uint8_t wEnemyMonHP[2], wEnemyMonLevel, wEnemyMonMaxHP[2];
extern uint8_t wBattleMonHP[2], wBattleMonLevel, wBattleMonMaxHP[2];
extern uint8_t wPlayerMoney[3];
extern uint8_t wEventFlags[320];
extern uint8_t wFontLoaded, wWalkCounter, wLastMap, wLastBlackoutMap, wJoyIgnore, wFacing;
extern uint8_t hWY;
/* Extra bytes for bots (DESIGN.md). */
extern uint8_t wGameMode, wBattleCursor, wBattlePhase, wTextActive, wMenuCursor, wBallCount;
extern uint8_t wBattleMonIndex, wEnemySpecies, wTrainerId, wBlackoutX, wBlackoutY;
extern uint8_t wMapWidth, wMapHeight;
#endif

#define MODE_TITLE 0
#define MODE_OVERWORLD 1
#define MODE_TEXT 2
#define MODE_MENU 3
#define MODE_PARTY 4
#define MODE_BATTLE 5

#define FACE_DOWN 0
#define FACE_UP 4
#define FACE_LEFT 8
#define FACE_RIGHT 12

#define TILE_BOX_TL 1
#define TILE_BOX_T 2
#define TILE_BOX_TR 3
#define TILE_BOX_L 4
#define TILE_BOX_R 5
#define TILE_BOX_BL 6
#define TILE_BOX_B 7
#define TILE_BOX_BR 8
#define TILE_BAR 9 /* 9 tiles: 0..8 pixels of an HP bar filled. */
#define TILE_PLAYER 0x60

/* core.c: frames, input, randomness, VRAM, text. */
extern uint8_t vblank_flag, frame_count, joy, joy_new, oam_dirty;
extern char msgbuf[80];
void wait_vblank(void);
void wait_frame(void);
void wait_jobs(void);
uint8_t rand8(void);
void lcd_off(void);
void lcd_on(void);
void vram_copy(uint8_t *dst, const uint8_t *src, uint16_t n);
void vram_fill(uint8_t *dst, uint8_t value, uint16_t n);
void queue_row(uint8_t *dst, const char *src, uint8_t n);
void box_open(uint8_t *base);
void box_line(uint8_t *base, uint8_t line, const char *text);
void text_box(uint8_t *base, const char *text);
uint8_t menu_choose(uint8_t *base, uint8_t count, uint8_t *cursor, uint8_t cancel);
void msg_clear(void);
void msg_str(const char *s);
void msg_num(uint16_t n);
void msg_chr(char c);
uint16_t get16(const uint8_t *p);
void put16(uint8_t *p, uint16_t v);

/* party.c */
void add_party_mon(uint8_t species_id, uint8_t level);
void set_mon_stats(PartyMon *mon, uint8_t species_id, uint8_t level);
void heal_party(void);
uint8_t first_healthy(void);
uint16_t calc_stat(uint8_t base, uint8_t level);
uint16_t calc_hp(uint8_t base, uint8_t level);
uint32_t exp_for_level(uint8_t level);
void add_money(uint16_t amount);
void halve_money(void);
void set_dex_bit(uint8_t *field, uint8_t species_id);
uint8_t event_set(uint8_t event);
void set_event(uint8_t event);

/* overworld.c */
void overworld_init(void);
void overworld_frame(void);
void load_map(uint8_t id);
void load_overworld_screen(void);

/* battle.c: returns 1 when the player won or caught/ran, 0 on a blackout. */
uint8_t battle(uint8_t trainer_id, uint8_t species_id, uint8_t level);

#endif
