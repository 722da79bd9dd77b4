import { useState } from 'preact/hooks'
import { call, type Session } from '../api.js'
import { Problem, useAction } from '../ui.js'

type Mode = 'owner-in' | 'owner-up' | 'maker-in' | 'maker-up'

const modes: Array<[Mode, string]> = [['owner-in', 'Owner sign in'], ['owner-up', 'New owner'], ['maker-in', 'Maker sign in'], ['maker-up', 'New maker']]

/** Sign-in and sign-up for owners (email and password) and makers (API token). */
export function SignIn ({ onSignedIn }: { onSignedIn: (s: Session) => void }) {
  const [mode, setMode] = useState<Mode>('owner-in')
  const [email, setEmail] = useState('')
  const [password, setPassword] = useState('')
  const [token, setToken] = useState('')
  const [name, setName] = useState('')
  const [newToken, setNewToken] = useState<string | null>(null)
  const action = useAction(async () => {
    if (mode === 'owner-up') await call('POST', '/v1/owners', { email, password })
    if (mode === 'owner-in' || mode === 'owner-up') {
      onSignedIn(await call<Session>('POST', '/v1/console/session', { email, password }))
    } else if (mode === 'maker-up') {
      const maker = await call<{ token: string }>('POST', '/v1/makers', { name })
      setNewToken(maker.token)
      setToken(maker.token)
    } else {
      onSignedIn(await call<Session>('POST', '/v1/console/session', { token }))
    }
  })
  const submit = (e: Event) => { e.preventDefault(); void action.run() }
  return (
    <section class="signin card">
      <h1>Trellis console</h1>
      <div class="tabs" role="tablist" aria-label="Who you are">
        {modes.map(([m, label]) => (
          <button type="button" role="tab" aria-selected={mode === m} onClick={() => { setMode(m); action.setError(null) }}>{label}</button>
        ))}
      </div>
      {newToken && mode === 'maker-up'
        ? (
          <div class="once">
            <p>Your maker API token. It is shown once: keep it somewhere safe, you sign in with it.</p>
            <output aria-label="Your maker token" class="secret">{newToken}</output>
            <button type="button" onClick={() => { setMode('maker-in'); setNewToken(null) }}>I have saved it, sign in</button>
          </div>
          )
        : (
          <form onSubmit={submit}>
            {(mode === 'owner-in' || mode === 'owner-up') && (
              <>
                <label>Email <input type="email" autocomplete="username" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} /></label>
                <label>Password <input type="password" autocomplete={mode === 'owner-up' ? 'new-password' : 'current-password'} required minLength={mode === 'owner-up' ? 10 : undefined} value={password} onInput={(e) => setPassword(e.currentTarget.value)} /></label>
                {mode === 'owner-up' && <p class="hint">At least 10 characters.</p>}
              </>
            )}
            {mode === 'maker-in' && <label>Maker token <input type="password" autocomplete="off" required value={token} onInput={(e) => setToken(e.currentTarget.value)} /></label>}
            {mode === 'maker-up' && <label>Brand name <input required maxLength={100} value={name} onInput={(e) => setName(e.currentTarget.value)} /></label>}
            <Problem error={action.error} />
            <button type="submit" class="primary" disabled={action.busy}>{modes.find(([m]) => m === mode)![1] === 'New owner' ? 'Create account' : mode === 'maker-up' ? 'Register brand' : 'Sign in'}</button>
          </form>
          )}
    </section>
  )
}
