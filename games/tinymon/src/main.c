/* tinymon: start-up, the title screen and the main loop. */
#include "game.h"

static void put_text(uint8_t *dst, const char *s) {
  while (*s) *dst++ = (uint8_t)*s++;
}

static void load_graphics(void) {
  vram_copy(VRAM_TILES, gfx_font, 0x60 * 16);
  vram_copy(VRAM_TILES + TILE_PLAYER * 16, gfx_player, 12 * 16);
  vram_copy(VRAM_TILES + META_TILE_BASE * 16, gfx_meta, gfx_meta_size);
}

static void title_screen(void) {
  wGameMode = MODE_TITLE;
  vram_fill(BG_MAP, ' ', 32 * 32);
  put_text(BG_MAP + 6 * 32 + 6, "TINYMON");
  put_text(BG_MAP + 11 * 32 + 4, "PRESS START");
  SCX = 0;
  SCY = 0;
  LCDC = LCDC_ON | LCDC_TILES_8000 | LCDC_BG_ON;
  do {
    wait_frame();
  } while (!(joy_new & (BTN_START | BTN_A)));
}

static void new_game(void) {
  static const uint8_t money[3] = START_MONEY_BCD;
  wCurMap = START_MAP;
  wXCoord = START_X;
  wYCoord = START_Y;
  wLastMap = START_MAP;
  wFacing = FACE_UP;
  wPartySpecies[0] = 0xFF;
  add_party_mon(START_SPECIES, START_LEVEL);
  set_dex_bit(wPokedexSeen, START_SPECIES);
  set_dex_bit(wPokedexOwned, START_SPECIES);
  wBallCount = START_BALLS;
  wPlayerMoney[0] = money[0];
  wPlayerMoney[1] = money[1];
  wPlayerMoney[2] = money[2];
  wLastBlackoutMap = START_BLACKOUT_MAP;
  wBlackoutX = START_BLACKOUT_X;
  wBlackoutY = START_BLACKOUT_Y;
  wTrainerId = 0xFF;
}

void main(void) {
  NR52 = 0; /* No sound. */
  BGP = 0xE4;
  OBP0 = 0xE4;
  OBP1 = 0xE4;
  WY = 144;
  WX = 7;
  hWY = 0x90;
  load_graphics();
  IF = 0;
  IE = 0x01; /* VBlank only. */
  __asm__("ei");
  title_screen();
  new_game();
  lcd_off();
  overworld_init();
  for (;;) {
    wait_frame();
    overworld_frame();
  }
}
