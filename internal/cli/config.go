package cli

import (
	"flag"
	"fmt"

	"moat/internal/config"
)

// withConfigFile decodes the YAML file named by the --config flag (if any)
// into raw, then re-applies every flag given on the command line, so flags
// win over the file and the file over defaults. Flags and YAML keys share
// names (--data-dir is data_dir).
func withConfigFile(fs *flag.FlagSet, file string, raw any) error {
	if file == "" {
		return nil
	}
	set := map[string]string{}
	fs.Visit(func(f *flag.Flag) {
		if f.Name != "config" {
			set[f.Name] = f.Value.String()
		}
	})
	if err := config.DecodeFile(file, raw); err != nil {
		return err
	}
	for name, v := range set {
		if _, repeated := fs.Lookup(name).Value.(*stringList); repeated {
			continue
		}
		if err := fs.Set(name, v); err != nil {
			return fmt.Errorf("--%s: %w", name, err)
		}
	}
	return nil
}
