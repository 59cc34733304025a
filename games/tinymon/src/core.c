/* Frames, input, randomness, VRAM access and text boxes.
 *
 * Every frame starts with a HALT until VBlank (wait_vblank in crt0.s), so the CPU sleeps instead of
 * spinning; the emulator then runs far faster. VRAM writes with the LCD on go through a small queue
 * of row jobs that wait_frame flushes at the start of VBlank, a few per frame. */
#include "game.h"

uint8_t vblank_flag, frame_count, joy, joy_new, oam_dirty;
char msgbuf[80];

/* The VRAM queue: entries of [length, destination (little-endian), bytes...] that flush_queue (in
 * crt0.s) copies at the start of VBlank, as many as fit in its per-frame budget. */
#define QUEUE_BYTES 256
uint8_t vram_queue[QUEUE_BYTES];
uint8_t *q_read = vram_queue, *q_write = vram_queue;
static uint16_t rng_state;
static uint8_t msg_len;

extern void overworld_vblank(void);
extern void flush_queue(void);

static void read_joypad(void) {
  uint8_t dirs, btns, now;
  P1 = 0x20; /* Select the direction keys. */
  dirs = P1;
  dirs = P1;
  P1 = 0x10; /* Select the buttons. */
  btns = P1;
  btns = P1;
  btns = P1;
  P1 = 0x30;
  now = (uint8_t)(~((uint8_t)(dirs << 4) | (btns & 0x0F)));
  joy_new = now & (uint8_t)~joy;
  joy = now;
}

void wait_frame(void) {
  wait_vblank();
  overworld_vblank();
  flush_queue();
  if (q_read == q_write) q_read = q_write = vram_queue;
  read_joypad();
  rng_state += frame_count;
}

void wait_jobs(void) {
  while (q_read != q_write) wait_frame();
}

void queue_row(uint8_t *dst, const char *src, uint8_t n) {
  uint8_t *w;
  if (q_write + n + 3 > vram_queue + QUEUE_BYTES) wait_jobs();
  w = q_write;
  *w++ = n;
  *w++ = (uint8_t)(uint16_t)dst;
  *w++ = (uint8_t)((uint16_t)dst >> 8);
  while (n--) *w++ = (uint8_t)*src++;
  q_write = w;
}

/* A 16-bit xorshift from a fixed seed, stirred by the frame counter in wait_frame: the same inputs
 * at the same frames give the same game. */
uint8_t rand8(void) {
  uint16_t x = rng_state ? rng_state : 0xACE1;
  x ^= x << 7;
  x ^= x >> 9;
  x ^= x << 8;
  rng_state = x;
  return (uint8_t)(x ^ (x >> 8));
}

void lcd_off(void) {
  if (!(LCDC & LCDC_ON)) return;
  wait_jobs();
  wait_vblank();
  LCDC &= (uint8_t)~LCDC_ON;
}

void lcd_on(void) {
  LCDC |= LCDC_ON;
}

void vram_copy(uint8_t *dst, const uint8_t *src, uint16_t n) {
  while (n--) *dst++ = *src++;
}

void vram_fill(uint8_t *dst, uint8_t value, uint16_t n) {
  while (n--) *dst++ = value;
}

uint16_t get16(const uint8_t *p) { return ((uint16_t)p[0] << 8) | p[1]; }

void put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

/* Text boxes: 5 rows at `base` (a 32-wide tile map): border, 3 lines, border. */
void box_open(uint8_t *base) {
  char row[20];
  uint8_t i;
  for (i = 1; i < 19; i++) row[i] = TILE_BOX_T;
  row[0] = TILE_BOX_TL;
  row[19] = TILE_BOX_TR;
  queue_row(base, row, 20);
  for (i = 1; i < 4; i++) box_line(base, i, "");
  for (i = 1; i < 19; i++) row[i] = TILE_BOX_B;
  row[0] = TILE_BOX_BL;
  row[19] = TILE_BOX_BR;
  queue_row(base + 4 * 32, row, 20);
}

/* Writes `text` (up to '\n' or the end, 18 characters) on line 1..3 of a box. */
void box_line(uint8_t *base, uint8_t line, const char *text) {
  char row[20];
  uint8_t i = 1;
  row[0] = TILE_BOX_L;
  while (i < 19 && *text && *text != '\n') row[i++] = *text++;
  while (i < 19) row[i++] = ' ';
  row[19] = TILE_BOX_R;
  queue_row(base + line * 32, row, 20);
}

static void wait_a(void) {
  wTextActive = 1;
  wait_jobs();
  do {
    wait_frame();
  } while (!(joy_new & (BTN_A | BTN_B)));
  wTextActive = 0;
}

/* Shows `text` two lines per page (lines 1 and 3 of the box); each page waits for A (or B). */
void text_box(uint8_t *base, const char *text) {
  const char *second;
  while (*text) {
    second = text;
    while (*second && *second != '\n') second++;
    if (*second) second++;
    box_line(base, 1, text);
    box_line(base, 2, "");
    box_line(base, 3, second);
    text = second;
    while (*text && *text != '\n') text++;
    if (*text) text++;
    wait_a();
  }
}

/* A vertical menu on lines 1..count of a box; returns the chosen index or 0xFF when `cancel`
 * buttons are pressed. `*cursor` is the live cursor byte a bot can read. */
uint8_t menu_choose(uint8_t *base, uint8_t count, uint8_t *cursor, uint8_t cancel) {
  uint8_t i;
  char mark[1];
  for (;;) {
    for (i = 0; i < count; i++) {
      mark[0] = (i == *cursor) ? '>' : ' ';
      queue_row(base + (i + 1) * 32 + 1, mark, 1);
    }
    wait_jobs();
    for (;;) {
      wait_frame();
      if (joy_new & BTN_A) return *cursor;
      if (joy_new & cancel) return 0xFF;
      if ((joy_new & BTN_UP) && *cursor > 0) { (*cursor)--; break; }
      if ((joy_new & BTN_DOWN) && *cursor + 1 < count) { (*cursor)++; break; }
    }
  }
}

void msg_clear(void) {
  msg_len = 0;
  msgbuf[0] = 0;
}

void msg_chr(char c) {
  if (msg_len < sizeof(msgbuf) - 1) {
    msgbuf[msg_len++] = c;
    msgbuf[msg_len] = 0;
  }
}

void msg_str(const char *s) {
  while (*s) msg_chr(*s++);
}

void msg_num(uint16_t n) {
  char digits[5];
  uint8_t i = 0;
  do {
    digits[i++] = (char)('0' + n % 10);
    n /= 10;
  } while (n);
  while (i) msg_chr(digits[--i]);
}
