import type { Ack, CapabilityDeclaration, Command, MappingInput, ReadingValue } from '@trellis/device-sdk'

/**
 * A brand the hub knows out of the box. It is plain data in the mapping
 * language, the same a maker submits with `POST /v1/models`, so the hub has
 * no code per brand: simulators and `npm start` declare these models through
 * the API like any maker would.
 */
export interface BuiltInDialect {
  /** The maker's display name. */
  readonly brand: string
  /** The body of `POST /v1/models`. */
  readonly model: { readonly name: string, readonly capabilities: CapabilityDeclaration[], readonly mapping: MappingInput }
  /** Recorded payloads and the exact canonical readings they give; tests and the maker's guide use them. */
  readonly samples: ReadonlyArray<{ readonly payload: string, readonly ts?: string, readonly readings: Record<string, ReadingValue> }>
  /** A canonical command, the payload the device receives for it, and an ack the device sends back. */
  readonly commandSample: { readonly command: Command, readonly payload: string, readonly ack: string, readonly decoded: Ack }
}
