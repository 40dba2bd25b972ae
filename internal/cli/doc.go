// Package cli implements kaopu's command line: it parses subcommands and
// flags, loads the configuration and hands off to the server or the store.
// cmd/kaopu/main.go only calls Run.
package cli
