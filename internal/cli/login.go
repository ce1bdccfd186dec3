package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kiln-project/kiln/internal/registry"
)

func newLogin(e *env) *cobra.Command {
	var user, password string
	var passwordStdin, tlsVerify bool
	cmd := &cobra.Command{
		Use:   "login [-u USER] [-p PASSWORD | --password-stdin] REGISTRY",
		Short: "Save credentials for a registry, after checking them",
		Long: `Check USER and PASSWORD against REGISTRY (host[:port]) and save them where Docker and Podman
read them: the "auths" of $REGISTRY_AUTH_FILE when set, else of $DOCKER_CONFIG/config.json
(~/.docker/config.json); a credential helper configured there (credsStore, credHelpers) stores them
instead. Without -p or --password-stdin the password is asked for on the terminal.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLogin(cmd, e, args[0], user, password, passwordStdin, tlsVerify)
		},
	}
	cmd.Flags().StringVarP(&user, "username", "u", "", "user name")
	cmd.Flags().StringVarP(&password, "password", "p", "", "password (visible to other users: prefer --password-stdin)")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from stdin")
	cmd.Flags().BoolVar(&tlsVerify, "tls-verify", true, "verify the registry's certificate and require HTTPS (but for localhost)")
	return cmd
}

func runLogin(cmd *cobra.Command, e *env, server, user, password string, passwordStdin, tlsVerify bool) error {
	switch {
	case passwordStdin && password != "":
		return errors.New("login: -p and --password-stdin exclude each other")
	case passwordStdin:
		if user == "" {
			return errors.New("login: --password-stdin needs -u")
		}
		b, err := io.ReadAll(io.LimitReader(e.stdin, 64<<10))
		if err != nil {
			return fmt.Errorf("login: read password: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	case password != "":
		fmt.Fprintln(e.stderr, "warning: a password given with -p is visible to other users; prefer --password-stdin")
	}
	var err error
	if user == "" {
		if user, err = e.prompt("Username: ", false); err != nil {
			return err
		}
	}
	if password == "" && !passwordStdin {
		if password, err = e.prompt("Password: ", true); err != nil {
			return err
		}
	}
	if user == "" || password == "" {
		return errors.New("login: empty user name or password")
	}
	o := e.registryOptions(tlsVerify, nil)
	host, where, err := o.Login(cmd.Context(), server, user, password)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "logged in to %s (credentials in %s)\n", host, where)
	return nil
}

// prompt asks on the terminal; without one it fails, naming the flag to use.
func (e *env) prompt(question string, secret bool) (string, error) {
	in, ok := e.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		if secret {
			return "", errors.New("login: no terminal to ask for the password: use --password-stdin or -p")
		}
		return "", errors.New("login: no terminal to ask for the user name: use -u")
	}
	fmt.Fprint(e.stderr, question)
	if secret {
		b, err := term.ReadPassword(int(in.Fd()))
		fmt.Fprintln(e.stderr)
		return string(b), err
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && line == "" {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

func newLogout(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "logout REGISTRY",
		Short: "Remove the credentials saved for a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			removed, err := registry.Logout(args[0])
			if err != nil {
				return err
			}
			host, _ := registry.RegistryHost(args[0])
			if !removed {
				fmt.Fprintf(e.stderr, "not logged in to %s\n", host)
				return nil
			}
			fmt.Fprintf(e.stderr, "removed the credentials for %s from %s\n", host, registry.AuthFile())
			return nil
		},
	}
}
