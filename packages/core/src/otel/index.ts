// @shardines/core/otel: the OpenTelemetry integration. Needs @opentelemetry/api (an optional
// peer dependency of @shardines/core); the main entry point never imports it.
export { instrumentOpenTelemetry, type OpenTelemetryOptions } from './instrument-open-telemetry.js'
