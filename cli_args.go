package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// flagsFirst returns args (args[0] the program name) with each command's
// flags moved before its positional arguments, so that flags typed after
// an argument work as people type them: "geckohost token revoke alpha
// --redis URL" is run as "geckohost token revoke --redis URL alpha"
// (urfave/cli, like Go's flag package, stops reading flags at the first
// argument). A flag's value goes with it when the flag takes one (its
// name is looked up among the command's flags, --help included). Nothing
// after "--" moves: "token revoke -- -odd" revokes "-odd". A word that
// names a subcommand is one only before any argument of its command, as
// before. "help COMMAND..." is "COMMAND... --help". A last flag that needs a value and has none is an error (else
// the argument before it would be read as its value).
func flagsFirst(app *cli.App, args []string) ([]string, error) {
	if len(args) < 2 {
		return args, nil
	}
	if (args[1] == "help" || args[1] == "h") && len(args) > 2 && findCommand(app.Commands, args[2]) != nil {
		// "geckohost help token revoke" is "geckohost token revoke --help"
		// (urfave/cli's help of a command with subcommands, shown from the
		// app, stops after USAGE).
		args = append(append([]string{args[0]}, args[2:]...), "--help")
	}
	out := []string{args[0]}
	flags, cmds := append([]cli.Flag{cli.HelpFlag, cli.VersionFlag}, app.Flags...), app.Commands
	var moved, pos []string
	for i := 1; i < len(args); i++ {
		tok := args[i]
		switch {
		case tok == "--":
			out = append(append(append(out, moved...), pos...), args[i:]...)
			return out, nil
		case len(tok) > 1 && tok[0] == '-':
			moved = append(moved, tok)
			name, _, hasValue := strings.Cut(strings.TrimLeft(tok, "-"), "=")
			if f := findFlag(flags, name); f != nil && !hasValue && takesValue(f) {
				if i+1 == len(args) {
					return nil, fmt.Errorf("flag %s needs a value (see --help)", tok)
				}
				i++
				moved = append(moved, args[i])
			}
		default:
			if cmd := findCommand(cmds, tok); cmd != nil && len(pos) == 0 {
				out = append(append(out, moved...), tok)
				moved = nil
				flags, cmds = append([]cli.Flag{cli.HelpFlag}, cmd.Flags...), cmd.Subcommands
				continue
			}
			pos = append(pos, tok)
		}
	}
	return append(append(out, moved...), pos...), nil
}

// findFlag returns the flag of flags named name, or nil.
func findFlag(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

// takesValue says whether f reads the next argument as its value (a bool
// flag does not).
func takesValue(f cli.Flag) bool {
	if d, ok := f.(cli.DocGenerationFlag); ok {
		return d.TakesValue()
	}
	return true
}

// findCommand returns the command of cmds named (or aliased) name, or nil.
func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// examples is one runnable example per command (by its full name; "" is
// the app itself), shown at the end of its --help. Each works as typed on
// a machine with a geckohost serve on the default address (the database:
// --db or $GECKOHOST_DB or the default path).
var examples = map[string]string{
	"":               "geckohost token add --name me && geckohost serve",
	"serve":          "geckohost serve --listen 127.0.0.1:8765 --allow-source https://example.com",
	"token":          "geckohost token list",
	"token add":      "geckohost token add --name alice --expires 30d --rate 60/1m",
	"token list":     "geckohost token list --json",
	"token revoke":   "geckohost token revoke alice",
	"sessions":       "geckohost sessions --token alice --limit 20",
	"sessions prune": "geckohost sessions prune --older-than 30d",
	"nodes":          "geckohost nodes --redis redis://127.0.0.1:6379/0",
	"bench":          `geckohost bench --token "$(geckohost token add --name bench)" -n 20 -c 4`,
	"status":         "geckohost status --url http://127.0.0.1:8765/",
	"version":        "geckohost version",
}

// addExamples ends the help of the app and of every command with its
// EXAMPLE (see examples).
func addExamples(app *cli.App) {
	app.CustomAppHelpTemplate = cli.AppHelpTemplate + exampleSection(examples[""])
	var walk func(prefix string, cmds []*cli.Command)
	walk = func(prefix string, cmds []*cli.Command) {
		for _, c := range cmds {
			name := strings.TrimSpace(prefix + " " + c.Name)
			if ex, ok := examples[name]; ok {
				tmpl := cli.CommandHelpTemplate
				if len(c.Subcommands) > 0 {
					tmpl = cli.SubcommandHelpTemplate
				}
				c.CustomHelpTemplate = tmpl + exampleSection(ex)
			}
			walk(name, c.Subcommands)
		}
	}
	walk("", app.Commands)
}

// exampleSection is the help's EXAMPLE section (the example is text, not
// template: braces are escaped).
func exampleSection(ex string) string {
	ex = strings.NewReplacer("{{", `{{"{{"}}`).Replace(ex)
	return "\nEXAMPLE:\n   " + ex + "\n"
}
