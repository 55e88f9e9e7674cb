// Package mlog stands in for monis.app/mlog, the logging library of the Azure
// Workload Identity webhook, which the Go module proxy reachable here refuses
// to serve. It offers the part of mlog's API the webhook's own code calls and
// logs through logr to stderr; the webhook's mutation code is unchanged.
package mlog

import (
	"context"
	"fmt"
	"os"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
)

// LogLevel is a verbosity, as in mlog.
type LogLevel string

// The levels of mlog.
const (
	LevelWarning LogLevel = "warning"
	LevelInfo    LogLevel = ""
	LevelDebug   LogLevel = "debug"
	LevelTrace   LogLevel = "trace"
	LevelAll     LogLevel = "all"
)

// LogFormat is an output format, as in mlog.
type LogFormat string

// FormatJSON asks for JSON lines.
const FormatJSON LogFormat = "json"

// LogSpec is the level and format, as in mlog.
type LogSpec struct {
	Level  LogLevel
	Format LogFormat
}

var verbosity = map[LogLevel]int{LevelWarning: -1, LevelInfo: 0, LevelDebug: 4, LevelTrace: 6, LevelAll: 108}

var current = LevelInfo

// ValidateAndSetLogLevelAndFormatGlobally sets the level; only JSON is written.
func ValidateAndSetLogLevelAndFormatGlobally(_ context.Context, spec LogSpec) error {
	if _, ok := verbosity[spec.Level]; !ok {
		return fmt.Errorf("invalid log level %q", spec.Level)
	}
	current = spec.Level
	return nil
}

// Enabled says whether level is logged.
func Enabled(level LogLevel) bool { return verbosity[current] >= verbosity[level] }

// Logr is the logger, as a logr.Logger.
func Logr() logr.Logger {
	return funcr.NewJSON(func(obj string) { fmt.Fprintln(os.Stderr, obj) }, funcr.Options{Verbosity: max(verbosity[current], 0)})
}

// Logger is mlog's logger: Error takes the message first, then the error.
type Logger struct{ l logr.Logger }

// New is the logger.
func New() Logger { return Logger{Logr()} }

// WithName adds a name element.
func (l Logger) WithName(name string) Logger { return Logger{l.l.WithName(name)} }

// WithValues adds key/value pairs.
func (l Logger) WithValues(kv ...any) Logger { return Logger{l.l.WithValues(kv...)} }

// Error logs err with msg.
func (l Logger) Error(msg string, err error, kv ...any) { l.l.Error(err, msg, kv...) }

// Warning logs at warning level.
func (l Logger) Warning(msg string, kv ...any) { l.l.Info(msg, kv...) }

// Info logs at info level.
func (l Logger) Info(msg string, kv ...any) { l.l.Info(msg, kv...) }

// Debug logs at debug level.
func (l Logger) Debug(msg string, kv ...any) { l.l.V(4).Info(msg, kv...) }

// Trace logs at trace level.
func (l Logger) Trace(msg string, kv ...any) { l.l.V(6).Info(msg, kv...) }

// Setup returns the function that flushes the logs (nothing to flush here).
func Setup() func() { return func() {} }

// Fatal logs err and exits 1.
func Fatal(err error) {
	Logr().Error(err, "fatal")
	os.Exit(1)
}
