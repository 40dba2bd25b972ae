// Package config defines kaopu's configuration: one struct with YAML tags,
// defaults in one place, strict decoding of the config file (unknown keys
// are errors), command-line flags on top, and Validate, whose errors name
// the offending key and what is allowed.
package config
