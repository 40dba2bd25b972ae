package callingcard

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// PINs are short secrets (4 to 12 digits): a million candidates at most
// for the default six digits, so no hash makes a stolen database safe on
// its own. What the store keeps is a PBKDF2-HMAC-SHA256 hash (RFC 8018)
// with a random 16-byte salt per card and pinIterations rounds: an
// attacker with the database must pay those rounds per candidate and per
// card (about 10^6 x 10^4 SHA-256 blocks for one six-digit PIN), instead
// of one precomputed table for all cards. Online guessing is what really
// protects a card: three wrong PINs end the call and count toward the
// source's ban.
const (
	pinIterations = 10_000
	pinSaltBytes  = 16
	pinHashBytes  = 32
	pinScheme     = "pbkdf2-sha256"
)

// HashPIN returns the stored form of a card's PIN:
// "pbkdf2-sha256$ROUNDS$SALT$HASH" (base64 without padding). The card
// number is part of the hashed input, so a hash copied to another card
// does not match there.
func HashPIN(number, pin string) (string, error) {
	salt := make([]byte, pinSaltBytes)
	rand.Read(salt)
	return hashPIN(number, pin, salt, pinIterations)
}

func hashPIN(number, pin string, salt []byte, iter int) (string, error) {
	key, err := pbkdf2.Key(sha256.New, number+":"+pin, salt, iter, pinHashBytes)
	if err != nil {
		return "", err
	}
	enc := base64.RawStdEncoding
	return fmt.Sprintf("%s$%d$%s$%s", pinScheme, iter, enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// dummyHash is checked against when a number is unknown, so that an
// unknown number costs the same time as a wrong PIN.
var dummyHash = func() string {
	h, _ := hashPIN("0", "0", make([]byte, pinSaltBytes), pinIterations)
	return h
}()

// CheckPIN reports whether pin is the PIN stored as hash for number.
func CheckPIN(hash, number, pin string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 4 || parts[0] != pinScheme {
		return false
	}
	iter, err := strconv.Atoi(parts[1])
	if err != nil || iter < 1 || iter > 10_000_000 {
		return false
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[2])
	if err != nil {
		return false
	}
	got, err := hashPIN(number, pin, salt, iter)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(hash)) == 1
}

// RandomDigits returns n random decimal digits from crypto/rand.
func RandomDigits(n int) string {
	b := make([]byte, n)
	ten := big.NewInt(10)
	for i := range b {
		d, _ := rand.Int(rand.Reader, ten)
		b[i] = byte('0' + d.Int64())
	}
	return string(b)
}

// Limits of card numbers and PINs as the service collects them.
const (
	MinPINDigits = 4
	MaxPINDigits = maxPINDigits
	MaxNumber    = maxCardDigits
)

// CheckNumber says whether s can be a card number: 6 to 20 digits.
func CheckNumber(s string) error {
	if len(s) < 6 || len(s) > maxCardDigits || strings.Trim(s, "0123456789") != "" {
		return fmt.Errorf("card number %q: want 6 to %d digits", s, maxCardDigits)
	}
	return nil
}

// CheckPINFormat says whether s can be a PIN: 4 to 12 digits.
func CheckPINFormat(s string) error {
	if len(s) < MinPINDigits || len(s) > maxPINDigits || strings.Trim(s, "0123456789") != "" {
		return errors.New("PIN: want 4 to 12 digits")
	}
	return nil
}
