package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"

	"go.yaml.in/yaml/v3"
)

// Load reads and parses the configuration file at path. See [Parse].
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	return Parse(data, path)
}

// Parse decodes a configuration, applies the defaults written in the
// structs' comments, and validates it. file names the source in messages and
// sets Config.File; relative file paths in the configuration (certificates,
// token, templates, access log) are resolved against its directory, or the
// working directory when file is "", and stored back as absolute paths.
//
// On any problem it returns a nil Config and an *Errors that lists every
// problem found, each with its line and key. It does no DNS lookups and
// opens no sockets; it reads the files the configuration names, to check
// that they are there.
//
// Parse is safe for concurrent use.
func Parse(data []byte, file string) (*Config, error) {
	dir := filepath.Dir(file)
	if file == "" {
		dir = "."
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	d := &decoder{
		file:   file,
		dir:    dir,
		nodes:  make(map[string]*yaml.Node),
		keys:   make(map[string]*yaml.Node),
		bad:    make(map[string]bool),
		budget: maxNodes,
	}
	c := newConfig(file)
	if root := d.parseYAML(data); root != nil {
		d.nodes[""] = root
		if root = d.visit(root); root != nil && !isNull(root) {
			if root.Kind != yaml.MappingNode {
				d.badValue(root, "", nil, "want a mapping of settings (listen, admin, routes, upstreams, ...), got %s", describe(root))
			} else {
				d.mapping(root, "", reflect.ValueOf(c).Elem())
			}
		}
		if d.budget >= 0 {
			d.validate(c)
		}
	}
	if len(d.errs) > 0 {
		sortErrors(d.errs)
		return nil, &Errors{List: d.errs}
	}
	return c, nil
}
