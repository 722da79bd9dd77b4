import { z } from 'zod'

/** Path parameters of a route on one thing: `/v1/devices/{id}`, `/v1/models/{id}` … */
export const IdParams = z.object({ id: z.string().min(1).max(64) })
export type IdParams = z.infer<typeof IdParams>
