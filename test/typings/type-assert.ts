/** `true` when `X` and `Y` are the same type (drizzle's type-tests/utils.ts). */
export type Equal<X, Y> = (<T>() => T extends X ? 1 : 2) extends <T>() => T extends Y ? 1 : 2 ? true : false

/** A type that compiles only when `T` is `true`: `type Ok = Expect<Equal<A, B>>`. */
export type Expect<T extends true> = T

/** Compiles only when `T` is `true`: `expectType<Equal<A, B>>()`. */
export function expectType<T extends true>(): T | undefined {
  return undefined
}

/** Flattens intersections and mapped types so that {@link Equal} compares shapes. */
export type Simplify<T> = { [K in keyof T]: T[K] } & {}
