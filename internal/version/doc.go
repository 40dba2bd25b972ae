// Package version holds the build version of kaopu, set at link time with
// -ldflags "-X github.com/kaopu/kaopu/internal/version.Version=v1.2.3".
package version
