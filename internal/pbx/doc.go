// Package pbx holds the PBX's own numbers, ring groups and IVR menus (auto
// attendants), between the store and the call layer: a Directory keeps
// the groups and menus of the store in memory and reloads them when the
// store's version counter moves (kaopu group / kaopu ivr work while the
// server runs), and Runner plays a menu on an application call's media:
// the prompt (barge-in with a key), one key or, with extension dialing, a
// whole number, then the destination the key names; an invalid key or
// none plays the menu again, up to its retries, then sends the caller to
// the menu's default or hangs up. The call layer (internal/call) rings
// the groups; internal/server wires both.
package pbx
