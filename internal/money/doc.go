// Package money is exact decimal arithmetic for rating and balances: the
// amounts the rating and billing packages compute and the store keeps. It
// imports nothing of kaopu.
//
// # Representation
//
// An Amount is an int64 count of micro-units: 1 = 0.000001 of the
// currency. A fixed scale in a machine integer, rather than math/big or a
// float, because:
//
//   - it is exact for every amount the system handles: six decimals cover
//     the minor units of every ISO 4217 currency (at most three) and the
//     sub-cent per-minute rates carriers publish (0.0125, 0.00345);
//   - it is stored as a plain SQLite INTEGER and summed by SQL exactly;
//   - it costs no allocation: rating sits on the call-setup path;
//   - its range, ±9.2 × 10^12 currency units, is far beyond any balance.
//
// Parse refuses more than six decimals rather than silently rounding an
// input: a rate deck that needs more precision is an error to report.
//
// # Rounding
//
// Sums and differences are exact. Only a product with a fraction — a
// per-minute rate times billed seconds over 60 — can fall between two
// micro-units. MulDiv computes it in 128 bits and rounds once, at that
// last step, half up (a half micro-unit goes up; for negative results,
// half away from zero), whatever the currency: costs are kept to the
// micro-unit, never rounded to cents on the way.
package money
