// pulumi-language-python: a minimal stand-in for Pulumi's Python language host.
//
// Why this exists: the real host lives in the Go module
// github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3, which has no tags and can only be
// fetched by pseudo-version; the module proxy reachable from this project's machines refuses every
// pseudo-version of it (403). The last in-sdk copy (sdk/v3 v3.79.0) reads the virtualenv only from a
// -virtualenv flag that current engines no longer pass. See ci/pulumi/README.md.
//
// This host is written against the LanguageRuntime gRPC interface of sdk/v3 v3.259.0 (pulumirpc; the same SDK
// version as the engine, as sdk/v3 v3.272.0's Go packages need a module the proxy refuses) and reuses the
// SDK's own building blocks: python/toolchain (pip / poetry / uv, virtualenv resolution and creation)
// and the PolicyProxy used by the official hosts to run Python policy packs. It starts the official
// `pulumi-language-python-exec` script (shipped in the sdk/v3 module, copied next to this binary) the
// same way the real host does.
//
// Implemented: Handshake, GetPluginInfo, GetRequiredPlugins, GetRequiredPackages, Run, InstallDependencies,
// RuntimeOptionsPrompts (no prompts), About, GetProgramDependencies, RunPlugin (policy packs and Python
// plugins). Not implemented (Unimplemented): code generation (GenerateProject/Program/Package), Pack, Link,
// Template, debugger attach, type checking is limited to running mypy/pyright as a module.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	sdk "github.com/pulumi/pulumi/sdk/v3"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/cmdutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/logging"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/version"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/pulumi/pulumi/sdk/v3/python/toolchain"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

const (
	execScriptName = "pulumi-language-python-exec"

	// Exit code of pulumi-language-python-exec when it already showed the user an actionable message.
	exitCodeBail = 32
)

func main() {
	var tracing, virtualenv, root, executor, typechecker, tc string
	flag.StringVar(&tracing, "tracing", "", "Emit tracing to a Zipkin-compatible tracing endpoint")
	flag.StringVar(&virtualenv, "virtualenv", "", "[legacy] virtual environment path to use")
	flag.StringVar(&root, "root", "", "[legacy] project root path")
	flag.StringVar(&typechecker, "typechecker", "", "[legacy] type checker to run (mypy or pyright)")
	flag.StringVar(&tc, "toolchain", "", "[legacy] toolchain to use (pip, poetry or uv)")
	flag.StringVar(&executor, "use-executor", "", "Use the given program as the executor instead of the "+
		execScriptName+" script next to this binary")
	flag.Parse()

	logging.InitLogging(false, 0, false)
	cmdutil.InitTracing("pulumi-language-python", "pulumi-language-python", tracing)

	if executor == "" {
		self, err := os.Executable()
		if err != nil {
			cmdutil.Exit(fmt.Errorf("could not determine current executable: %w", err))
		}
		if resolved, err := filepath.EvalSymlinks(self); err == nil {
			self = resolved
		}
		executor = filepath.Join(filepath.Dir(self), execScriptName)
	}
	if _, err := os.Stat(executor); err != nil {
		cmdutil.Exit(fmt.Errorf("missing executor %s: %w", executor, err))
	}

	cwd, err := os.Getwd()
	if err != nil {
		cmdutil.Exit(fmt.Errorf("getting the working directory: %w", err))
	}

	host := &pythonHost{
		exec:    executor,
		tracing: tracing,
		cwd:     cwd,
		legacy: legacyOptions{
			virtualenv: virtualenv, root: root, typechecker: typechecker, toolchain: tc,
		},
	}
	if args := flag.Args(); len(args) > 0 {
		host.engineAddress = args[0]
	}

	cancel := make(chan bool)
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: cancel,
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, host)
			return nil
		},
	})
	if err != nil {
		cmdutil.Exit(fmt.Errorf("could not start language host RPC server: %w", err))
	}

	// The engine reads the port from the first line of stdout.
	fmt.Printf("%d\n", handle.Port)

	if err := <-handle.Done; err != nil {
		cmdutil.Exit(fmt.Errorf("language host RPC stopped serving: %w", err))
	}
}

type legacyOptions struct {
	virtualenv, root, typechecker, toolchain string
}

type pythonHost struct {
	pulumirpc.UnimplementedLanguageRuntimeServer

	exec    string
	tracing string
	cwd     string
	legacy  legacyOptions

	mu            sync.Mutex
	engineAddress string
}

func (h *pythonHost) engine() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.engineAddress
}

// ---------------------------------------------------------------------------------------------------------------
// Options and toolchain resolution

type pyOptions struct {
	root, programDir, entryPoint string
	virtualenv                   string
	toolchain                    string
	typechecker                  string
}

func stringOption(opts *structpb.Struct, key string) string {
	if opts == nil {
		return ""
	}
	v, ok := opts.GetFields()[key]
	if !ok {
		return ""
	}
	if s, ok := v.GetKind().(*structpb.Value_StringValue); ok {
		return s.StringValue
	}
	return ""
}

// options merges the runtime options of Pulumi.yaml (sent in ProgramInfo) with legacy command-line flags.
func (h *pythonHost) options(info *pulumirpc.ProgramInfo, fallbackDir string) pyOptions {
	o := pyOptions{
		root:        h.legacy.root,
		programDir:  fallbackDir,
		virtualenv:  h.legacy.virtualenv,
		toolchain:   h.legacy.toolchain,
		typechecker: h.legacy.typechecker,
		entryPoint:  ".",
	}
	if info != nil {
		if d := info.GetRootDirectory(); d != "" {
			o.root = d
		}
		if d := info.GetProgramDirectory(); d != "" {
			o.programDir = d
		}
		if e := info.GetEntryPoint(); e != "" {
			o.entryPoint = e
		}
		opts := info.GetOptions()
		if v := stringOption(opts, "virtualenv"); v != "" {
			o.virtualenv = v
		}
		if v := stringOption(opts, "toolchain"); v != "" {
			o.toolchain = v
		}
		if v := stringOption(opts, "typechecker"); v != "" {
			o.typechecker = v
		}
	}
	if o.programDir == "" {
		o.programDir = h.cwd
	}
	if o.root == "" {
		o.root = o.programDir
	}
	return o
}

func (o pyOptions) resolve() (toolchain.Toolchain, error) {
	popts := toolchain.PythonOptions{
		Root:       o.root,
		ProgramDir: o.programDir,
		Virtualenv: o.virtualenv,
	}
	switch strings.ToLower(o.toolchain) {
	case "", "auto":
		popts.Toolchain = toolchain.Auto
	case "pip":
		popts.Toolchain = toolchain.Pip
	case "poetry":
		popts.Toolchain = toolchain.Poetry
	case "uv":
		popts.Toolchain = toolchain.Uv
	default:
		return nil, fmt.Errorf("unsupported python toolchain %q (expected pip, poetry or uv)", o.toolchain)
	}
	switch strings.ToLower(o.typechecker) {
	case "":
		popts.Typechecker = toolchain.TypeCheckerNone
	case "mypy":
		popts.Typechecker = toolchain.TypeCheckerMypy
	case "pyright":
		popts.Typechecker = toolchain.TypeCheckerPyright
	default:
		return nil, fmt.Errorf("unsupported python typechecker %q (expected mypy or pyright)", o.typechecker)
	}
	return toolchain.ResolveToolchain(popts)
}

// withEnv returns cmd's environment (or the process environment) extended by extra.
func withEnv(cmd *exec.Cmd, extra ...string) []string {
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	return append(env, extra...)
}

// ---------------------------------------------------------------------------------------------------------------
// Simple RPCs

func (h *pythonHost) Handshake(
	ctx context.Context, req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	h.mu.Lock()
	if a := req.GetEngineAddress(); a != "" {
		h.engineAddress = a
	}
	h.mu.Unlock()
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *pythonHost) GetPluginInfo(ctx context.Context, _ *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version.Version}, nil
}

func (h *pythonHost) RuntimeOptionsPrompts(
	ctx context.Context, req *pulumirpc.RuntimeOptionsRequest,
) (*pulumirpc.RuntimeOptionsResponse, error) {
	return &pulumirpc.RuntimeOptionsResponse{}, nil
}

func (h *pythonHost) About(ctx context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	o := h.options(req.GetInfo(), "")
	tc, err := o.resolve()
	if err != nil {
		return nil, err
	}
	info, err := tc.About(ctx)
	if err != nil {
		return nil, err
	}
	meta := map[string]string{"toolchain": o.toolchain}
	if o.virtualenv != "" {
		meta["virtualenv"] = o.virtualenv
	}
	return &pulumirpc.AboutResponse{
		Executable: info.PythonExecutable,
		Version:    info.PythonVersion.String(),
		Metadata:   meta,
	}, nil
}

func (h *pythonHost) GetProgramDependencies(
	ctx context.Context, req *pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	tc, err := h.options(req.GetInfo(), req.GetPwd()).resolve()
	if err != nil {
		return nil, err
	}
	if err := tc.ValidateVenv(ctx); err != nil {
		return nil, err
	}
	deps, err := tc.ListPackages(ctx, req.GetTransitiveDependencies())
	if err != nil {
		return nil, err
	}
	out := make([]*pulumirpc.DependencyInfo, 0, len(deps))
	for _, d := range deps {
		out = append(out, &pulumirpc.DependencyInfo{Name: d.Name, Version: d.Version})
	}
	return &pulumirpc.GetProgramDependenciesResponse{Dependencies: out}, nil
}

// ---------------------------------------------------------------------------------------------------------------
// Required plugins: read pulumi-plugin.json of the installed Python packages.

// listPluginsScript prints, as JSON, every installed distribution that ships a top-level
// pulumi-plugin.json (or the older pulumiplugin.json), plus every "pulumi-*" distribution.
const listPluginsScript = `
import json
from importlib import metadata
out, seen = [], set()
for dist in metadata.distributions():
    name = dist.metadata["Name"] or ""
    key = name.lower().replace("_", "-")
    if not key or key in seen:
        continue
    seen.add(key)
    path = None
    for f in dist.files or []:
        if len(f.parts) == 2 and f.parts[1] in ("pulumi-plugin.json", "pulumiplugin.json"):
            path = str(dist.locate_file(f))
            break
    if path or key.startswith("pulumi-"):
        out.append({"name": key, "version": dist.version, "plugin": path})
print(json.dumps(out))
`

type pyDist struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Plugin  string `json:"plugin"`
}

var plainSemver = regexp.MustCompile(`^v?\d+\.\d+\.\d+$`)

func (h *pythonHost) requiredPackages(
	ctx context.Context, info *pulumirpc.ProgramInfo, fallbackDir string,
) ([]*pulumirpc.PackageDependency, error) {
	o := h.options(info, fallbackDir)
	tc, err := o.resolve()
	if err != nil {
		return nil, err
	}
	if err := tc.ValidateVenv(ctx); err != nil {
		return nil, err
	}
	cmd, err := tc.Command(ctx, "-c", listPluginsScript)
	if err != nil {
		return nil, err
	}
	cmd.Dir = o.programDir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	output, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("listing installed Python packages: %w: %s", err, stderr.String())
	}
	var dists []pyDist
	if err := json.Unmarshal(output, &dists); err != nil {
		return nil, fmt.Errorf("parsing installed Python packages: %w", err)
	}

	var result []*pulumirpc.PackageDependency
	for _, d := range dists {
		name, ver, server := "", "", ""
		var param *pulumirpc.PackageParameterization
		if d.Plugin != "" {
			pj, err := plugin.LoadPulumiPluginJSON(d.Plugin)
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", d.Plugin, err)
			}
			if !pj.Resource {
				continue
			}
			name, ver, server = pj.Name, pj.Version, pj.Server
			if p := pj.Parameterization; p != nil {
				param = &pulumirpc.PackageParameterization{Name: p.Name, Version: p.Version, Value: p.Value}
			}
		} else if d.Name == "pulumi-policy" {
			continue // known to have no plugin
		}
		if name == "" {
			name = strings.TrimPrefix(d.Name, "pulumi-")
		}
		if ver == "" {
			// Pre-release Python versions (e.g. 1.2.3a456) do not map onto plugin versions; skip them.
			if !plainSemver.MatchString(d.Version) {
				logging.V(5).Infof("GetRequiredPackages: skipping %s %s (no plugin version)", d.Name, d.Version)
				continue
			}
			ver = d.Version
		}
		if !strings.HasPrefix(ver, "v") {
			ver = "v" + ver
		}
		result = append(result, &pulumirpc.PackageDependency{
			Name: name, Kind: "resource", Version: ver, Server: server, Parameterization: param,
		})
	}
	return result, nil
}

func (h *pythonHost) GetRequiredPackages(
	ctx context.Context, req *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	pkgs, err := h.requiredPackages(ctx, req.GetInfo(), "")
	if err != nil {
		return nil, err
	}
	return &pulumirpc.GetRequiredPackagesResponse{Packages: pkgs}, nil
}

func (h *pythonHost) GetRequiredPlugins(
	ctx context.Context, req *pulumirpc.GetRequiredPluginsRequest,
) (*pulumirpc.GetRequiredPluginsResponse, error) {
	pkgs, err := h.requiredPackages(ctx, req.GetInfo(), req.GetPwd())
	if err != nil {
		return nil, err
	}
	var plugins []*pulumirpc.PluginDependency
	for _, p := range pkgs {
		if p.Parameterization != nil {
			continue
		}
		plugins = append(plugins, &pulumirpc.PluginDependency{
			Name: p.Name, Kind: p.Kind, Version: p.Version, Server: p.Server,
		})
	}
	return &pulumirpc.GetRequiredPluginsResponse{Plugins: plugins}, nil
}

// ---------------------------------------------------------------------------------------------------------------
// Run

func (h *pythonHost) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	o := h.options(req.GetInfo(), req.GetPwd())
	tc, err := o.resolve()
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	if err := tc.ValidateVenv(ctx); err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}

	program := req.GetProgram()
	if req.GetInfo() != nil || program == "" {
		program = o.entryPoint
		if !filepath.IsAbs(program) {
			program = filepath.Join(o.programDir, program)
		}
	}

	if o.typechecker != "" {
		module := strings.ToLower(o.typechecker)
		cmd, err := tc.ModuleCommand(ctx, module, program)
		if err != nil {
			return nil, err
		}
		cmd.Dir = o.programDir
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			var exitErr *exec.ExitError
			if errors.As(err, &exitErr) {
				return &pulumirpc.RunResponse{Error: fmt.Sprintf("%s type checking failed", module)}, nil
			}
			return &pulumirpc.RunResponse{Error: fmt.Sprintf(
				"the typechecker option is set to %s, but %s could not be run (is it installed?): %v",
				module, module, err)}, nil
		}
	}

	pwd := req.GetPwd()
	if pwd == "" {
		pwd = o.programDir
	}
	args := []string{h.exec}
	add := func(k, v string) {
		if v != "" {
			args = append(args, "--"+k, v)
		}
	}
	add("monitor", req.GetMonitorAddress())
	add("engine", h.engine())
	add("project", req.GetProject())
	add("root_directory", o.root)
	add("stack", req.GetStack())
	add("pwd", pwd)
	add("dry_run", strconv.FormatBool(req.GetDryRun()))
	add("parallel", strconv.Itoa(int(req.GetParallel())))
	add("tracing", h.tracing)
	add("organization", req.GetOrganization())
	args = append(args, program)
	args = append(args, req.GetArgs()...)

	cmd, err := tc.Command(ctx, args...)
	if err != nil {
		return nil, err
	}
	var extra []string
	if cfg := req.GetConfig(); cfg != nil {
		b, err := json.Marshal(cfg)
		if err != nil {
			return nil, fmt.Errorf("failed to serialize configuration: %w", err)
		}
		extra = append(extra, "PULUMI_CONFIG="+string(b))
	}
	if keys := req.GetConfigSecretKeys(); keys != nil {
		b, err := json.Marshal(keys)
		if err != nil {
			return nil, fmt.Errorf("failed to serialize configuration secret keys: %w", err)
		}
		extra = append(extra, "PULUMI_CONFIG_SECRET_KEYS="+string(b))
	}
	cmd.Env = withEnv(cmd, extra...)
	cmd.Dir = pwd
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr

	logging.V(5).Infof("Language host launching process: %s", strings.Join(cmd.Args, " "))
	if err := cmd.Run(); err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			code := exitErr.ExitCode()
			if code == exitCodeBail {
				return &pulumirpc.RunResponse{Bail: true}, nil
			}
			return &pulumirpc.RunResponse{Error: fmt.Sprintf("Program exited with non-zero exit code: %d", code)}, nil
		}
		return &pulumirpc.RunResponse{
			Error: fmt.Sprintf("Problem executing program (could not run language executor): %v", err),
		}, nil
	}
	return &pulumirpc.RunResponse{}, nil
}

// ---------------------------------------------------------------------------------------------------------------
// Streaming helpers

// streamWriter turns Write calls into messages on a server stream; sends are serialised.
type streamWriter struct {
	mu   *sync.Mutex
	send func([]byte) error
}

func (w streamWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	b := append([]byte(nil), p...)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.send(b); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (h *pythonHost) InstallDependencies(
	req *pulumirpc.InstallDependenciesRequest, server pulumirpc.LanguageRuntime_InstallDependenciesServer,
) error {
	ctx := server.Context()
	o := h.options(req.GetInfo(), req.GetDirectory())
	tc, err := o.resolve()
	if err != nil {
		return err
	}
	var mu sync.Mutex
	stdout := streamWriter{&mu, func(b []byte) error {
		return server.Send(&pulumirpc.InstallDependenciesResponse{Stdout: b})
	}}
	stderr := streamWriter{&mu, func(b []byte) error {
		return server.Send(&pulumirpc.InstallDependenciesResponse{Stderr: b})
	}}
	return tc.InstallDependencies(ctx, o.programDir, req.GetUseLanguageVersionTools(), true, stdout, stderr)
}

// ---------------------------------------------------------------------------------------------------------------
// RunPlugin: policy packs (kind "analyzer") and plugins written in Python.

func (h *pythonHost) RunPlugin(
	req *pulumirpc.RunPluginRequest, server pulumirpc.LanguageRuntime_RunPluginServer,
) error {
	ctx := server.Context()
	o := h.options(req.GetInfo(), req.GetPwd())
	tc, err := o.resolve()
	if err != nil {
		return err
	}
	if err := tc.ValidateVenv(ctx); err != nil {
		return err
	}

	var mu sync.Mutex
	stdout := streamWriter{&mu, func(b []byte) error {
		return server.Send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Stdout{Stdout: b}})
	}}
	stderr := streamWriter{&mu, func(b []byte) error {
		return server.Send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Stderr{Stderr: b}})
	}}

	pwd := req.GetPwd()
	if pwd == "" {
		pwd = o.programDir
	}
	env := append([]string(nil), req.GetEnv()...)

	var cmd *exec.Cmd
	if req.GetKind() == "analyzer" {
		// Policy packs: the engine talks to a proxy served here; once it has sent the stack configuration,
		// start `python -m pulumi.policy <engine> <pack dir>` with the legacy environment variables.
		proxy, childStdout, err := sdk.NewPolicyProxy(ctx, stdout)
		if err != nil {
			return err
		}
		cfg, err := proxy.AwaitConfiguration(ctx)
		if err != nil {
			return err
		}
		if cfg != nil {
			if c := cfg.GetConfig(); c != nil {
				b, err := json.Marshal(c)
				if err != nil {
					return err
				}
				env = append(env, "PULUMI_CONFIG="+string(b))
			}
			if k := cfg.GetConfigSecretKeys(); k != nil {
				b, err := json.Marshal(k)
				if err != nil {
					return err
				}
				env = append(env, "PULUMI_CONFIG_SECRET_KEYS="+string(b))
			}
			for k, v := range map[string]string{
				"PULUMI_PROJECT":      cfg.GetProject(),
				"PULUMI_STACK":        cfg.GetStack(),
				"PULUMI_ORGANIZATION": cfg.GetOrganization(),
			} {
				if v != "" {
					env = append(env, k+"="+v)
				}
			}
			env = append(env, "PULUMI_DRY_RUN="+strconv.FormatBool(cfg.GetDryRun()))
		}
		engine := h.engine()
		if a := req.GetArgs(); len(a) > 0 {
			engine = a[0]
		}
		cmd, err = tc.Command(ctx, "-u", "-m", "pulumi.policy", engine, o.programDir)
		if err != nil {
			return err
		}
		cmd.Env = withEnv(cmd, env...)
		cmd.Dir = o.programDir
		cmd.Stdout, cmd.Stderr = childStdout, stderr
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("starting policy pack: %w", err)
		}
		err = proxy.Attach(ctx, cmd)
		return sendExit(server, &mu, err)
	}

	program := o.entryPoint
	if !filepath.IsAbs(program) {
		program = filepath.Join(o.programDir, program)
	}
	cmd, err = tc.Command(ctx, append([]string{"-u", program}, req.GetArgs()...)...)
	if err != nil {
		return err
	}
	cmd.Env = withEnv(cmd, env...)
	cmd.Dir = pwd
	cmd.Stdout, cmd.Stderr = stdout, stderr
	return sendExit(server, &mu, cmd.Run())
}

func sendExit(server pulumirpc.LanguageRuntime_RunPluginServer, mu *sync.Mutex, runErr error) error {
	code := int32(0)
	if runErr != nil {
		var exitErr *exec.ExitError
		if !errors.As(runErr, &exitErr) {
			return runErr
		}
		code = int32(exitErr.ExitCode()) //nolint:gosec
	}
	mu.Lock()
	defer mu.Unlock()
	return server.Send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Exitcode{Exitcode: code}})
}

var _ pulumirpc.LanguageRuntimeServer = (*pythonHost)(nil)
