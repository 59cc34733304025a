; tinymon start-up: interrupt vectors, entry at 0x100, RAM clearing, the OAM DMA routine in HRAM,
; the VBlank handler and the HALT-based VBlank wait. Register addresses from Pan Docs.

        .module crt0
        .globl  _main
        .globl  _vblank_flag
        .globl  _frame_count
        .globl  _oam_dirty
        .globl  _q_read
        .globl  _q_write

        .area   _HEADER (ABS)
        .org    0x40            ; VBlank
        jp      vblank_isr
        .org    0x48            ; STAT
        reti
        .org    0x50            ; timer
        reti
        .org    0x58            ; serial
        reti
        .org    0x60            ; joypad
        reti

        .org    0x100           ; entry; the cartridge header follows (written by makebin)
        nop
        jp      start

        ; The linker places the areas in this order.
        .area   _HOME
        .area   _CODE
        .area   _INITIALIZER
        .area   _GSINIT
        .area   _GSFINAL
        .area   _DATA
        .area   _INITIALIZED
        .area   _BSEG
        .area   _BSS
        .area   _HEAP

        .area   _CODE
start:
        di
        ld      sp, #0xE000
        ; Wait for VBlank (LY >= 144), then switch the LCD off to load graphics freely.
1$:     ldh     a, (0x44)
        cp      a, #144
        jr      c, 1$
        xor     a, a
        ldh     (0x40), a
        ; Zero all work RAM so nothing depends on power-on garbage.
        ld      hl, #0xC000
        ld      bc, #0x2000
2$:     xor     a, a
        ld      (hl+), a
        dec     bc
        ld      a, b
        or      a, c
        jr      nz, 2$
        ; Zero HRAM (0xFF80..0xFFFE).
        ld      hl, #0xFF80
        ld      c, #0x7F
3$:     xor     a, a
        ld      (hl+), a
        dec     c
        jr      nz, 3$
        ; Copy the OAM DMA routine into HRAM: the CPU may only run from HRAM during DMA.
        ld      hl, #dma_routine
        ld      de, #0xFF80
        ld      c, #(dma_end - dma_routine)
4$:     ld      a, (hl+)
        ld      (de), a
        inc     de
        dec     c
        jr      nz, 4$
        ; Explicitly initialised globals.
        ld      de, #s__INITIALIZED
        ld      hl, #s__INITIALIZER
        ld      bc, #l__INITIALIZER
5$:     ld      a, b
        or      a, c
        jr      z, 6$
        ld      a, (hl+)
        ld      (de), a
        inc     de
        dec     bc
        jr      5$
6$:     call    gsinit
        jp      _main

; Copied to 0xFF80. Starts a DMA of the shadow OAM at 0xC000 and waits the 160 cycles it takes.
dma_routine:
        ld      a, #0xC0
        ldh     (0x46), a
        ld      a, #40
7$:     dec     a
        jr      nz, 7$
        ret
dma_end:

vblank_isr:
        push    af
        push    bc
        push    de
        push    hl
        ld      a, (_oam_dirty)     ; DMA only after the shadow OAM changed.
        or      a, a
        jr      z, 13$
        xor     a, a
        ld      (_oam_dirty), a
        call    0xFF80
13$:    ld      a, #1
        ld      (_vblank_flag), a
        ld      hl, #_frame_count
        inc     (hl)
        pop     hl
        pop     de
        pop     bc
        pop     af
        reti

; void wait_vblank(void): sleeps in HALT until the VBlank handler has run.
_wait_vblank::
        xor     a, a
        ld      (_vblank_flag), a
8$:     halt
        nop
        ld      a, (_vblank_flag)
        or      a, a
        jr      z, 8$
        ret

; void flush_queue(void): copies queued VRAM entries [len, dst lo, dst hi, bytes] from _q_read up to
; _q_write, stopping when the next entry would pass the per-frame budget (len + 4 units each, about
; 10 cycles per unit) so that the writes stay inside VBlank.
_flush_queue::
        ld      hl, #_q_read
        ld      a, (hl+)
        ld      h, (hl)
        ld      l, a
        ld      b, #72
9$:     ld      a, (_q_write)
        cp      a, l
        jr      nz, 10$
        ld      a, (_q_write + 1)
        cp      a, h
        jr      z, 12$
10$:    ld      a, (hl)
        add     a, #4
        ld      c, a
        ld      a, b
        sub     a, c
        jr      c, 12$
        ld      b, a
        ld      a, (hl+)
        ld      c, a
        ld      a, (hl+)
        ld      e, a
        ld      a, (hl+)
        ld      d, a
11$:    ld      a, (hl+)
        ld      (de), a
        inc     de
        dec     c
        jr      nz, 11$
        jr      9$
12$:    ld      a, l
        ld      (_q_read), a
        ld      a, h
        ld      (_q_read + 1), a
        ret

        .area   _GSINIT
gsinit::
        .area   _GSFINAL
        ret
