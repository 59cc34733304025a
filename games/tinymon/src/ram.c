/* The RAM mirror: every field the agent reads, at Pokémon Red's address and encoding (see
 * dreamer_jax/envs/ram_map.py), plus the extra bytes for bots listed in DESIGN.md. The build checks
 * (tools/check_map.py) that no other variable lands in these ranges. */
#define DEFINE_RAM
#include "game.h"

__at(0xD35E) uint8_t wCurMap;
__at(0xD361) uint8_t wYCoord;
__at(0xD362) uint8_t wXCoord;
__at(0xD356) uint8_t wObtainedBadges;
__at(0xD163) uint8_t wPartyCount;
__at(0xD164) uint8_t wPartySpecies[7];
__at(0xD16B) PartyMon wPartyMon[6];
__at(0xD2F7) uint8_t wPokedexOwned[19];
__at(0xD30A) uint8_t wPokedexSeen[19];
__at(0xD057) uint8_t wIsInBattle;
__at(0xCFE6) uint8_t wEnemyMonHP[2];
__at(0xCFF3) uint8_t wEnemyMonLevel;
__at(0xCFF4) uint8_t wEnemyMonMaxHP[2];
__at(0xD015) uint8_t wBattleMonHP[2];
__at(0xD022) uint8_t wBattleMonLevel;
__at(0xD023) uint8_t wBattleMonMaxHP[2];
__at(0xD347) uint8_t wPlayerMoney[3];
__at(0xD747) uint8_t wEventFlags[320];
__at(0xCFC4) uint8_t wFontLoaded;
__at(0xCFC5) uint8_t wWalkCounter;
__at(0xD365) uint8_t wLastMap;
__at(0xD719) uint8_t wLastBlackoutMap;
__at(0xCD6B) uint8_t wJoyIgnore;
__at(0xC109) uint8_t wFacing;
__at(0xFFB0) uint8_t hWY;

__at(0xD900) uint8_t wGameMode;
__at(0xD901) uint8_t wBattleCursor;
__at(0xD902) uint8_t wBattlePhase;
__at(0xD903) uint8_t wTextActive;
__at(0xD904) uint8_t wMenuCursor;
__at(0xD905) uint8_t wBallCount;
__at(0xD906) uint8_t wBattleMonIndex;
__at(0xD907) uint8_t wEnemySpecies;
__at(0xD908) uint8_t wTrainerId;
__at(0xD909) uint8_t wBlackoutX;
__at(0xD90A) uint8_t wBlackoutY;
__at(0xD90B) uint8_t wMapWidth;
__at(0xD90C) uint8_t wMapHeight;
