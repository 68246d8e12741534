// Command geckohost runs WebRTC data-channel workers in a supervised
// headless Firefox and manages the tokens and session records they use.
//
// Usage:
//
//	geckohost serve [--listen 127.0.0.1:8765] [--allow-source PATTERN]... [flags]
//	geckohost token add --name NAME [--expires 720h] [--source PATTERN]... [--max-workers N]
//	geckohost token list [--json]
//	geckohost token revoke ID|NAME
//	geckohost sessions [--token NAME] [--limit N] [--json]
//	geckohost version
//
// Every command takes --db PATH (or $GECKOHOST_DB); every flag can also be set
// from a GECKOHOST_* environment variable (see each command's --help).
package main
