/* The overworld: map loading, the scrolling camera, walking on the 16x16 cell grid, warps, talking,
 * the START menu and the party view.
 *
 * The background map (32x32 tiles = 16x16 cells) is a ring buffer around the player: at rest it holds
 * the 12x11 cells that can come into view during the next step, and each step queues the new column
 * or row for the VBlank copy (core.c), which lands within a few frames. */
#include "game.h"

#define OAM ((uint8_t *)0xC000)
#define STEP_FRAMES 16
#define WIN_Y_TEXT 104
#define WIN_HIDDEN 144

static uint8_t cellbuf[32 * 32];
static const MapDef *cur;
static int8_t walk_dx, walk_dy;
static uint8_t walk_off;
static uint8_t scroll_on, next_scx, next_scy;

static const uint8_t kind_cell[] = {CELL_TALK, CELL_SIGN, CELL_NURSE, CELL_TRAINER, CELL_LEADER,
                                    CELL_GUARD};

static uint8_t npc_visible(const Npc *n) {
  return n->kind != KIND_GUARD || (wObtainedBadges & n->arg) != n->arg;
}

void load_map(uint8_t id) {
  uint8_t x, y, i;
  const uint8_t *src;
  const Npc *n;
  cur = &maps[id];
  wCurMap = id;
  wMapWidth = cur->w;
  wMapHeight = cur->h;
  src = cur->cells;
  for (y = 0; y < cur->h; y++) {
    for (x = 0; x < cur->w; x++) cellbuf[(y << 5) | x] = *src++;
  }
  n = cur->npcs;
  for (i = 0; i < cur->nnpcs; i++, n++) {
    if (npc_visible(n)) cellbuf[(n->y << 5) | n->x] = kind_cell[n->kind];
  }
}

static uint8_t cell_at(int8_t x, int8_t y) {
  if (x < 0 || y < 0 || x >= (int8_t)cur->w || y >= (int8_t)cur->h) return CELL_TREE;
  return cellbuf[((uint8_t)y << 5) | (uint8_t)x];
}

static uint8_t *cell_vram(int8_t x, int8_t y) {
  return BG_MAP + ((uint16_t)((uint8_t)y & 15) << 6) + (((uint8_t)x & 15) << 1);
}

/* Draws `n` cells of row `y` from column `x` on directly (LCD off only). */
static void draw_row(int8_t x, int8_t y, uint8_t n) {
  uint8_t *row = BG_MAP + ((uint16_t)((uint8_t)y & 15) << 6);
  const uint8_t *src = &cellbuf[((uint8_t)y & 31) << 5];
  const uint8_t *t;
  uint8_t *p;
  uint8_t inside = y >= 0 && y < (int8_t)cur->h, w = cur->w;
  for (; n; n--, x++) {
    t = metatiles[(inside && x >= 0 && (uint8_t)x < w) ? src[(uint8_t)x] : CELL_TREE];
    p = row + (((uint8_t)x & 15) << 1);
    p[0] = t[0];
    p[1] = t[1];
    p[32] = t[2];
    p[33] = t[3];
  }
}

/* Queues a cell for the next VBlank (LCD on). */
static void queue_cell(int8_t x, int8_t y) {
  const char *t = (const char *)metatiles[cell_at(x, y)];
  uint8_t *p = cell_vram(x, y);
  queue_row(p, t, 2);
  queue_row(p + 32, t + 2, 2);
}

static void set_player_sprite(uint8_t bob) {
  uint8_t base, top, flip = 0;
  switch (wFacing) {
    case FACE_UP: base = TILE_PLAYER + 4; break;
    case FACE_LEFT: base = TILE_PLAYER + 8; break;
    case FACE_RIGHT: base = TILE_PLAYER + 8; flip = 0x20; break;
    default: base = TILE_PLAYER; break;
  }
  /* Four 8x8 sprites at screen cell (4, 4), one pixel higher mid-step (a walking bob); a mirrored
   * facing swaps the columns. */
  top = (uint8_t)(80 - bob);
  OAM[0] = top; OAM[1] = 72; OAM[2] = (uint8_t)(base + (flip ? 1 : 0)); OAM[3] = flip;
  OAM[4] = top; OAM[5] = 80; OAM[6] = (uint8_t)(base + (flip ? 0 : 1)); OAM[7] = flip;
  OAM[8] = top + 8; OAM[9] = 72; OAM[10] = (uint8_t)(base + (flip ? 3 : 2)); OAM[11] = flip;
  OAM[12] = top + 8; OAM[13] = 80; OAM[14] = (uint8_t)(base + (flip ? 2 : 3)); OAM[15] = flip;
  oam_dirty = 1;
}

static uint8_t scroll_x(void) {
  return (uint8_t)((uint8_t)(wXCoord << 4) + walk_dx * (int8_t)walk_off - 64);
}

static uint8_t scroll_y(void) {
  return (uint8_t)((uint8_t)(wYCoord << 4) + walk_dy * (int8_t)walk_off - 64);
}

/* Called by wait_frame at the start of VBlank. */
void overworld_vblank(void) {
  if (!scroll_on) return;
  SCX = next_scx;
  SCY = next_scy;
}

/* Redraws the whole overworld screen with the LCD off (after a warp, a battle, the title). */
void load_overworld_screen(void) {
  int8_t y, top = (int8_t)(wYCoord - 5);
  lcd_off();
  /* The ring at rest: columns x-5..x+6 and rows y-5..y+5 around the player. */
  for (y = top; y < top + 11; y++) draw_row((int8_t)(wXCoord - 5), y, 12);
  set_player_sprite(0);
  WY = WIN_HIDDEN;
  WX = 7;
  hWY = 0x90;
  SCX = next_scx = scroll_x();
  SCY = next_scy = scroll_y();
  scroll_on = 1;
  wGameMode = MODE_OVERWORLD;
  LCDC = LCDC_ON | LCDC_WIN_9C00 | LCDC_WIN_ON | LCDC_TILES_8000 | LCDC_OBJ_ON | LCDC_BG_ON;
}

static void show_box(void) {
  wFontLoaded |= 1;
  hWY = 0;
  box_open(WIN_MAP);
  wait_jobs();
  WY = WIN_Y_TEXT;
}

static void hide_box(void) {
  WY = WIN_HIDDEN;
  hWY = 0x90;
  wFontLoaded &= (uint8_t)~1;
  wGameMode = MODE_OVERWORLD;
}

static void say(const char *text) {
  wGameMode = MODE_TEXT;
  show_box();
  text_box(WIN_MAP, text);
  hide_box();
}

static void blackout(void) {
  halve_money();
  heal_party();
  wLastMap = wCurMap;
  load_map(wLastBlackoutMap);
  wXCoord = wBlackoutX;
  wYCoord = wBlackoutY;
  wFacing = FACE_UP;
}

static void after_battle(uint8_t result) {
  if (!result) blackout();
  load_overworld_screen();
}

static void start_battle(uint8_t trainer_id, uint8_t species_id, uint8_t level) {
  scroll_on = 0;
  after_battle(battle(trainer_id, species_id, level));
}

static void put_text(uint8_t *dst, const char *s) {
  while (*s) *dst++ = (uint8_t)*s++;
}

static void party_view(void) {
  uint8_t i;
  PartyMon *mon;
  wGameMode = MODE_PARTY;
  lcd_off();
  vram_fill(WIN_MAP, ' ', 32 * 18);
  put_text(WIN_MAP + 32 + 1, "PARTY");
  for (i = 0; i < wPartyCount; i++) {
    mon = &wPartyMon[i];
    msg_clear();
    msg_str(species[mon->species].name);
    put_text(WIN_MAP + (3 + 2 * i) * 32 + 1, msgbuf);
    msg_clear();
    msg_str("L");
    msg_num(mon->level);
    msg_str(" HP ");
    msg_num(get16(mon->hp));
    msg_chr('/');
    msg_num(get16(mon->max_hp));
    put_text(WIN_MAP + (4 + 2 * i) * 32 + 3, msgbuf);
  }
  msg_clear();
  msg_str("BADGES ");
  msg_num((wObtainedBadges & 1) + (wObtainedBadges >> 1 & 1) + (wObtainedBadges >> 2 & 1));
  msg_str("  BALLS ");
  msg_num(wBallCount);
  put_text(WIN_MAP + 15 * 32 + 1, msgbuf);
  msg_clear();
  msg_str("MONEY $");
  for (i = 0; i < 6; i++) {
    uint8_t digit = (uint8_t)((i & 1) ? wPlayerMoney[i >> 1] & 0x0F : wPlayerMoney[i >> 1] >> 4);
    if (digit || msgbuf[7] || i == 5) msg_chr((char)('0' + digit));
  }
  put_text(WIN_MAP + 16 * 32 + 1, msgbuf);
  WY = 0;
  LCDC &= (uint8_t)~LCDC_OBJ_ON;
  lcd_on();
  do {
    wait_frame();
  } while (!(joy_new & (BTN_A | BTN_B | BTN_START)));
  lcd_off();
  vram_fill(WIN_MAP, ' ', 32 * 5);
  LCDC |= LCDC_OBJ_ON;
  lcd_on();
}

static void start_menu(void) {
  uint8_t choice;
  wGameMode = MODE_MENU;
  show_box();
  box_line(WIN_MAP, 1, " PARTY");
  box_line(WIN_MAP, 2, " CLOSE");
  wMenuCursor = 0;
  choice = menu_choose(WIN_MAP, 2, &wMenuCursor, BTN_B | BTN_START);
  if (choice == 0) party_view();
  hide_box();
}

static const Npc *npc_at(uint8_t x, uint8_t y) {
  const Npc *n = cur->npcs;
  uint8_t i;
  for (i = 0; i < cur->nnpcs; i++, n++) {
    if (n->x == x && n->y == y && npc_visible(n)) return n;
  }
  return 0;
}

static void facing_delta(int8_t *dx, int8_t *dy) {
  *dx = 0;
  *dy = 0;
  switch (wFacing) {
    case FACE_UP: *dy = -1; break;
    case FACE_LEFT: *dx = -1; break;
    case FACE_RIGHT: *dx = 1; break;
    default: *dy = 1; break;
  }
}

static void interact(void) {
  int8_t dx, dy;
  const Npc *n;
  facing_delta(&dx, &dy);
  n = npc_at((uint8_t)(wXCoord + dx), (uint8_t)(wYCoord + dy));
  if (!n) return;
  if (n->kind == KIND_TRAINER || n->kind == KIND_LEADER) {
    if (event_set(n->arg)) {
      say(n->after);
    } else {
      say(n->text);
      start_battle(n->arg, 0, 0);
    }
    return;
  }
  say(n->text);
  if (n->kind == KIND_NURSE) {
    heal_party();
    if (wBallCount < START_BALLS) wBallCount = START_BALLS;
    wLastBlackoutMap = wCurMap;
    wBlackoutX = n->x;
    wBlackoutY = (uint8_t)(n->y + 1);
  }
}

static void finish_step(void) {
  const Warp *w;
  const Encounter *e;
  uint8_t i, cell;
  wXCoord = (uint8_t)(wXCoord + walk_dx);
  wYCoord = (uint8_t)(wYCoord + walk_dy);
  walk_dx = walk_dy = 0;
  walk_off = 0;
  next_scx = scroll_x();
  next_scy = scroll_y();
  cell = cell_at((int8_t)wXCoord, (int8_t)wYCoord);
  if (cell == CELL_DOOR || cell == CELL_EXIT) {
    w = cur->warps;
    for (i = 0; i < cur->nwarps; i++, w++) {
      if (w->x == wXCoord && w->y == wYCoord) {
        wLastMap = wCurMap;
        load_map(w->map);
        wXCoord = w->dx;
        wYCoord = w->dy;
        load_overworld_screen();
        return;
      }
    }
  }
  if (cell == CELL_GRASS && cur->nenc && rand8() < ENCOUNTER_RATE) {
    e = &cur->enc[rand8() % cur->nenc];
    start_battle(0xFF, e->species, (uint8_t)(e->lmin + rand8() % (uint8_t)(e->lmax - e->lmin + 1)));
  }
}

static void start_step(int8_t dx, int8_t dy) {
  int8_t nx = (int8_t)(wXCoord + dx), ny = (int8_t)(wYCoord + dy), i;
  walk_dx = dx;
  walk_dy = dy;
  walk_off = 0;
  wWalkCounter = STEP_FRAMES;
  /* Queue the column/row that the next step in this direction can reveal. */
  if (dx) {
    for (i = -5; i <= 5; i++) queue_cell(dx > 0 ? nx + 6 : nx - 5, ny + i);
  } else {
    for (i = -5; i <= 6; i++) queue_cell(nx + i, dy > 0 ? ny + 5 : ny - 5);
  }
}

void overworld_frame(void) {
  int8_t dx, dy;
  uint8_t face;
  if (wWalkCounter) {
    walk_off++;
    wWalkCounter--;
    if (wWalkCounter) {
      next_scx = scroll_x();
      next_scy = scroll_y();
      if (walk_off == 4 || walk_off == 12) set_player_sprite(walk_off == 4);
    } else {
      finish_step();
    }
    return;
  }
  if (joy_new & BTN_START) {
    start_menu();
    return;
  }
  if (joy_new & BTN_A) {
    interact();
    return;
  }
  if (joy & BTN_DOWN) face = FACE_DOWN;
  else if (joy & BTN_UP) face = FACE_UP;
  else if (joy & BTN_LEFT) face = FACE_LEFT;
  else if (joy & BTN_RIGHT) face = FACE_RIGHT;
  else return;
  if (face != wFacing) {
    wFacing = face;
    set_player_sprite(0);
  }
  facing_delta(&dx, &dy);
  if (cell_at((int8_t)(wXCoord + dx), (int8_t)(wYCoord + dy)) < FIRST_SOLID) start_step(dx, dy);
}

void overworld_init(void) {
  load_map(wCurMap);
  load_overworld_screen();
}
