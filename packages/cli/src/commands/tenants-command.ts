import * as readline from 'node:readline/promises'
import type { AnyShardines } from '@shardines/core'
import type { CliOutput } from '../cli-output.js'
import { CliUsageError, type ParsedCommand } from '../parse-command.js'

type TenantsCommand = Extract<
  ParsedCommand,
  {
    kind:
      | 'tenants-list'
      | 'tenants-create'
      | 'tenants-destroy'
      | 'tenants-rename'
      | 'tenants-archive'
      | 'tenants-restore'
      | 'tenants-archived'
      | 'tenants-rekey'
  }
>

/** What `tenants destroy` needs to ask for confirmation. */
export interface ConfirmIo {
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean }
  readonly stderr: NodeJS.WritableStream
}

/** `shardines tenants list | create ID | destroy ID [--yes] | rename FROM TO | archive ID | restore ID | archived | rekey ID --previous-key-env NAME`. */
export async function tenantsCommand(
  shard: AnyShardines,
  command: TenantsCommand,
  out: CliOutput,
  io: ConfirmIo,
): Promise<number> {
  switch (command.kind) {
    case 'tenants-list': {
      const ids: string[] = []
      for await (const id of shard.tenants.list()) {
        ids.push(id)
        out.line(id)
      }
      if (out.json) out.result(ids)
      return 0
    }
    case 'tenants-create': {
      await shard.tenants.create(command.id)
      out.line(`created tenant ${command.id}`)
      if (out.json) out.result({ created: command.id })
      return 0
    }
    case 'tenants-destroy': {
      if (!command.yes) await confirm(command.id, io)
      const existed = await shard.tenants.destroy(command.id)
      out.line(existed ? `destroyed tenant ${command.id}` : `tenant ${command.id} did not exist`)
      if (out.json) out.result({ destroyed: command.id, existed })
      return existed ? 0 : 1
    }
    case 'tenants-rename': {
      await shard.tenants.rename(command.from, command.to)
      out.line(`renamed tenant ${command.from} to ${command.to}`)
      if (out.json) out.result({ renamed: command.from, to: command.to })
      return 0
    }
    case 'tenants-archive': {
      const archived = await shard.tenants.archive(command.id)
      out.line(
        `archived tenant ${command.id} at version ${archived.version ?? '(none)'} (${archived.bytes} bytes, ${archived.compressedBytes} compressed)`,
      )
      if (out.json) out.result({ archived })
      return 0
    }
    case 'tenants-rekey': {
      const previousKey = process.env[command.previousKeyEnv]
      if (previousKey === undefined || previousKey === '') {
        out.error(
          `tenants rekey ${command.id}: the environment variable ${command.previousKeyEnv} is not set (it must hold the tenant's current key).`,
        )
        return 2
      }
      await shard.tenants.rekey(command.id, { previousKey })
      out.line(`re-encrypted tenant ${command.id} with its new key`)
      if (out.json) out.result({ rekeyed: command.id })
      return 0
    }
    case 'tenants-restore': {
      await shard.tenants.restore(command.id)
      out.line(`restored tenant ${command.id}`)
      if (out.json) out.result({ restored: command.id })
      return 0
    }
    case 'tenants-archived': {
      const all = []
      for await (const archived of shard.tenants.archived()) {
        all.push(archived)
        out.line(`${archived.id}\t${archived.version ?? '(none)'}\t${archived.archivedAt}`)
      }
      if (out.json) out.result(all)
      return 0
    }
  }
}

async function confirm(id: string, io: ConfirmIo): Promise<void> {
  if (!io.stdin.isTTY) {
    throw new CliUsageError(
      `tenants destroy deletes tenant "${id}"'s database: pass --yes to confirm when not on a terminal.`,
    )
  }
  const rl = readline.createInterface({ input: io.stdin, output: io.stderr })
  try {
    const answer = await rl.question(`This deletes tenant "${id}" and all its data. Type the tenant id to confirm: `)
    if (answer.trim() !== id) throw new CliUsageError(`Not confirmed; tenant "${id}" was not destroyed.`)
  } finally {
    rl.close()
  }
}
