import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createAdaptorServer } from '@hono/node-server'
import { type AppOptions, createApp } from './app.js'
import type { NotesShard } from './shard.js'

export interface RunningServer {
  readonly server: Server
  readonly port: number
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  /** Stops accepting connections and waits for open ones to end. */
  close(): Promise<void>
}

/** Serves the app on `host:port` (port 0: a free one). Resolves once listening. */
export async function startServer(
  shard: NotesShard,
  options: AppOptions & { port?: number; host?: string } = {},
): Promise<RunningServer> {
  const { port = 3000, host = '127.0.0.1', ...appOptions } = options
  const app = createApp(shard, appOptions)
  const server = createAdaptorServer({ fetch: app.fetch, hostname: host }) as Server
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const bound = (server.address() as AddressInfo).port
  return {
    server,
    port: bound,
    url: `http://${host}:${bound}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()))
        server.closeIdleConnections()
      }),
  }
}
