/* Game Boy hardware registers (addresses from Pan Docs). */
#ifndef HW_H
#define HW_H
#include <stdint.h>

#define REG(addr) (*(volatile uint8_t *)(addr))
#define P1 REG(0xFF00)
#define LCDC REG(0xFF40)
#define STAT REG(0xFF41)
#define SCY REG(0xFF42)
#define SCX REG(0xFF43)
#define LY REG(0xFF44)
#define BGP REG(0xFF47)
#define OBP0 REG(0xFF48)
#define OBP1 REG(0xFF49)
#define WY REG(0xFF4A)
#define WX REG(0xFF4B)
#define IF REG(0xFF0F)
#define IE REG(0xFFFF)
#define NR52 REG(0xFF26)

#define LCDC_ON 0x80
#define LCDC_WIN_9C00 0x40
#define LCDC_WIN_ON 0x20
#define LCDC_TILES_8000 0x10
#define LCDC_OBJ_ON 0x02
#define LCDC_BG_ON 0x01

#define VRAM_TILES ((uint8_t *)0x8000)
#define BG_MAP ((uint8_t *)0x9800)
#define WIN_MAP ((uint8_t *)0x9C00)

#define BTN_A 0x01
#define BTN_B 0x02
#define BTN_SELECT 0x04
#define BTN_START 0x08
#define BTN_RIGHT 0x10
#define BTN_LEFT 0x20
#define BTN_UP 0x40
#define BTN_DOWN 0x80

#endif
