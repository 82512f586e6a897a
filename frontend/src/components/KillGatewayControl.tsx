import { useState } from 'react';
import { ConfirmDialog } from './ConfirmDialog';

interface Props {
  gateway: string | null;
  disabled: boolean;
  killing: boolean;
  onKill: () => void;
}

/** "Kill my gateway": the provisioner replica relaying the socket restarts, behind a confirm. */
export function KillGatewayControl({ gateway, disabled, killing, onKill }: Props) {
  const [asking, setAsking] = useState(false);
  return (
    <>
      <button
        type="button"
        className="btn btn-danger"
        data-testid="kill-gateway"
        disabled={disabled || killing}
        aria-busy={killing}
        onClick={() => setAsking(true)}
      >
        {killing ? 'Restarting…' : 'Kill my gateway'}
      </button>
      <ConfirmDialog
        open={asking}
        title="Restart your gateway?"
        confirmLabel="Restart it"
        testId="kill-gateway-confirm"
        onCancel={() => setAsking(false)}
        onConfirm={() => {
          setAsking(false);
          onKill();
        }}
      >
        <p>
          The provisioner replica{' '}
          <strong className="mono">{gateway ?? 'relaying your connection'}</strong> stops taking
          new connections, closes its WebSockets and exits; your page reconnects through another
          replica and your pod carries on. Other visitors on that replica reconnect too.
        </p>
      </ConfirmDialog>
    </>
  );
}
