import { isValidTenantId, TenantExistsError } from '@shardines/core'
import { asObject, HttpError, text } from './http-error.js'
import type { NotesShard } from './shard.js'

export interface SignupInput {
  email: string
  name: string
  /** The company; the tenant is named after it unless `tenant` is given. */
  company: string
  tenant?: string | undefined
  plan?: string | undefined
}

export interface SignupResult {
  account: { id: number; email: string; name: string }
  tenant: { id: string; name: string; plan: string }
}

/** Reads and checks a signup body (400 on anything wrong, before anything is written). */
export function parseSignup(raw: unknown): SignupInput {
  const body = asObject(raw)
  const email = text(body, 'email', 200).toLowerCase()
  if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email))
    throw new HttpError(400, 'BAD_REQUEST', `"email" is not an email address.`)
  return {
    email,
    name: text(body, 'name', 100),
    company: text(body, 'company', 100),
    tenant: body.tenant === undefined ? undefined : text(body, 'tenant', 64),
    plan: body.plan === undefined ? undefined : text(body, 'plan', 32),
  }
}

/** `Acme Corp.` → `acme-corp`. */
export function slugOf(company: string): string {
  return company
    .normalize('NFKD')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 64)
}

/**
 * Creates an account, its tenant (a new SQLite file with every tenant migration)
 * and the owner's membership. The tenant file is made first and removed again
 * if the apex rows cannot be written, so a failed signup leaves nothing behind.
 */
export async function signup(shard: NotesShard, input: SignupInput): Promise<SignupResult> {
  const tenantId = input.tenant ?? slugOf(input.company)
  if (!isValidTenantId(tenantId)) {
    throw new HttpError(
      400,
      'INVALID_TENANT_ID',
      `"${tenantId}" cannot name a tenant: use 1–64 characters of a-z, 0-9, "_" and "-", starting with a letter or digit.`,
    )
  }
  const planId = input.plan ?? 'free'
  const plan = await shard.apex.selectFrom('plans').select('id').where('id', '=', planId).executeTakeFirst()
  if (!plan) throw new HttpError(400, 'UNKNOWN_PLAN', `There is no plan "${planId}" (try free, team or business).`)
  const taken = await shard.apex.selectFrom('accounts').select('id').where('email', '=', input.email).executeTakeFirst()
  if (taken) throw new HttpError(409, 'EMAIL_TAKEN', `An account with ${input.email} exists already.`)
  const listed = await shard.apex.selectFrom('tenants').select('id').where('id', '=', tenantId).executeTakeFirst()
  if (listed) throw new HttpError(409, 'TENANT_EXISTS', `The tenant "${tenantId}" is taken; choose another name.`)

  try {
    await shard.tenants.create(tenantId)
  } catch (error) {
    if (error instanceof TenantExistsError) {
      throw new HttpError(409, 'TENANT_EXISTS', `The tenant "${tenantId}" is taken; choose another name.`)
    }
    throw error
  }
  try {
    return await shard.apex.transaction().execute(async (trx) => {
      const account = await trx
        .insertInto('accounts')
        .values({ email: input.email, name: input.name })
        .returning(['id', 'email', 'name'])
        .executeTakeFirstOrThrow()
      await trx
        .insertInto('tenants')
        .values({ id: tenantId, name: input.company, plan_id: planId, owner_id: account.id })
        .execute()
      await trx
        .insertInto('memberships')
        .values({ tenant_id: tenantId, account_id: account.id, role: 'owner' })
        .execute()
      return { account, tenant: { id: tenantId, name: input.company, plan: planId } }
    })
  } catch (error) {
    await shard.tenants.destroy(tenantId)
    // Two signups racing for one email: the unique index decides, the loser gets a 409.
    const again = await shard.apex
      .selectFrom('accounts')
      .select('id')
      .where('email', '=', input.email)
      .executeTakeFirst()
    if (again) throw new HttpError(409, 'EMAIL_TAKEN', `An account with ${input.email} exists already.`)
    throw error
  }
}
