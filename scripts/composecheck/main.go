// Command composecheck validates docker-compose.yml the way `docker compose config`
// does (compose-spec schema, interpolation, merge keys, depends_on targets), and that
// the files it bind-mounts exist, for
// machines that have the Docker client but no compose plugin. `make lint` runs it.
//
// It is its own module so that compose-go stays out of lift's dependencies.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: composecheck docker-compose.yml")
		os.Exit(2)
	}
	if err := check(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "composecheck:", err)
		os.Exit(1)
	}
}

func check(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	opts, err := cli.NewProjectOptions([]string{abs},
		cli.WithWorkingDirectory(filepath.Dir(abs)),
		cli.WithName("lift"),
	)
	if err != nil {
		return err
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		return err
	}
	for name, svc := range project.Services {
		if svc.Image == "" && svc.Build == nil {
			return fmt.Errorf("service %s: neither image nor build", name)
		}
		for _, v := range svc.Volumes {
			if v.Type == "bind" {
				if _, err := os.Stat(v.Source); err != nil {
					return fmt.Errorf("service %s: bind mount: %w", name, err) // docker would create a directory
				}
			}
		}
	}
	fmt.Printf("composecheck: %s: %d services valid\n", path, len(project.Services))
	return nil
}
