// Command kaopu is a complete VoIP system in one binary: registrar, PBX,
// media gateway and softphone. See README.md.
package main
