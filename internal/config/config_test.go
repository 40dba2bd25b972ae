package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDefaultsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
}

func TestDecodeStrict(t *testing.T) {
	c := Default()
	err := Decode(strings.NewReader("registrar:\n  min_expire: 5\n"), &c)
	if err == nil || !strings.Contains(err.Error(), "min_expire") {
		t.Fatalf("unknown key accepted or not named: %v", err)
	}
	c = Default()
	if err := Decode(strings.NewReader("security:\n  ban_time: 5s\n  ban_window: 90\nauth:\n  algorithms: [MD5]\n"), &c); err != nil {
		t.Fatal(err)
	}
	if c.Security.BanTime.D() != 5*time.Second || c.Security.BanWindow.D() != 90*time.Second || c.Auth.Algorithms[0] != "MD5" {
		t.Fatalf("decoded %+v %+v", c.Security, c.Auth)
	}
	if c.Registrar.MinExpires != 60 {
		t.Fatal("defaults lost for keys the file did not set")
	}
}

func TestValidateNamesKey(t *testing.T) {
	tests := []struct {
		key string
		mod func(*Config)
	}{
		{"sip.listen", func(c *Config) { c.SIP.Listen = "nonsense" }},
		{"rtp.ports", func(c *Config) { c.RTP.Ports = "20000-10000" }},
		{"registrar.min_expires", func(c *Config) { c.Registrar.MinExpires = 0 }},
		{"registrar.max_expires", func(c *Config) { c.Registrar.MaxExpires = 10 }},
		{"auth.algorithms", func(c *Config) { c.Auth.Algorithms = []string{"SHA-1"} }},
		{"security.ban_action", func(c *Config) { c.Security.BanAction = "maybe" }},
		{"security.signalling", func(c *Config) { c.Security.Signalling = "tls" }},
		{"security.signalling", func(c *Config) { c.Security.Signalling = "" }},
		{"security.media_encryption", func(c *Config) { c.Security.MediaEncryption = "always" }},
		{"security.trusted", func(c *Config) { c.Security.Trusted = []string{"10.0.0.0/33"} }},
		{"log.format", func(c *Config) { c.Log.Format = "xml" }},
		{"public_ip", func(c *Config) { c.PublicIP = "somewhere" }},
		{"db", func(c *Config) { c.DB = "mysql://x" }},
		{"calls.federation", func(c *Config) { c.Calls.Federation = "yes" }},
		{"calls.federation", func(c *Config) { c.Calls.Federation = "" }},
		{"calls.international_prefixes", func(c *Config) { c.Calls.InternationalPrefixes = []string{"00x"} }},
		{"calls.premium_prefixes", func(c *Config) { c.Calls.PremiumPrefixes = []string{""} }},
		{"calls.emergency_numbers", func(c *Config) { c.Calls.EmergencyNumbers = []string{"+"} }},
		{"sip.max_pending_per_source", func(c *Config) { c.SIP.MaxPendingPerSource = -1 }},
		{"sip.max_calls_setup_per_source", func(c *Config) { c.SIP.MaxCallsSetupPerSource = -1 }},
		{"sip.max_connections_per_source", func(c *Config) { c.SIP.MaxConnectionsPerSource = 100001 }},
		{"sip.message_timeout", func(c *Config) { c.SIP.MessageTimeout = 0 }},
		{"sip.message_timeout", func(c *Config) { c.SIP.MessageTimeout = Duration(time.Hour) }},
		{"sip.idle_timeout", func(c *Config) { c.SIP.IdleTimeout = Duration(time.Second) }},
		{"cards.access", func(c *Config) { c.Cards.Access = []string{"88a"} }},
		{"cards.max_attempts", func(c *Config) { c.Cards.MaxAttempts = 0 }},
		{"cards.digit_timeout", func(c *Config) { c.Cards.DigitTimeout = Duration(100 * time.Millisecond) }},
		{"voicemail.access", func(c *Config) { c.Voicemail.Access = "9x" }},
		{"voicemail.deposit", func(c *Config) { c.Voicemail.Deposit = c.Voicemail.Access }},
		{"voicemail.max_message", func(c *Config) { c.Voicemail.MaxMessage = Duration(time.Second) }},
		{"voicemail.max_silence", func(c *Config) { c.Voicemail.MaxSilence = 0 }},
		{"calls.voicemail_after", func(c *Config) { c.Calls.VoicemailAfter = 0 }},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			c := Default()
			tc.mod(&c)
			err := c.Validate()
			var ce *Error
			if !errors.As(err, &ce) || ce.Key != tc.key {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tc.key)
			}
			if !strings.Contains(err.Error(), "allowed") {
				t.Fatalf("error does not say what is allowed: %v", err)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add("sip:\n  listen: :5060\nregistrar: {min_expires: 60}\n")
	f.Add("auth: {nonce_ttl: 5m, algorithms: [MD5, SHA-256]}")
	f.Fuzz(func(t *testing.T, in string) {
		c := Default()
		if Decode(strings.NewReader(in), &c) == nil {
			_ = c.Validate() // must not panic
		}
	})
}
