import { useState } from 'react';
import { ConfirmDialog } from './ConfirmDialog';

interface Props {
  podName: string | null;
  disabled: boolean;
  killing: boolean;
  onKill: () => void;
}

/** "Kill my pod", behind an in-page confirm. */
export function KillControl({ podName, disabled, killing, onKill }: Props) {
  const [asking, setAsking] = useState(false);
  return (
    <>
      <button
        type="button"
        className="btn btn-danger"
        data-testid="kill"
        disabled={disabled || killing}
        aria-busy={killing}
        onClick={() => setAsking(true)}
      >
        {killing ? 'Killing…' : 'Kill my pod'}
      </button>
      <ConfirmDialog
        open={asking}
        title="Kill your pod?"
        confirmLabel="Kill it"
        testId="kill-confirm"
        onCancel={() => setAsking(false)}
        onConfirm={() => {
          setAsking(false);
          onKill();
        }}
      >
        <p>
          Pod <strong className="mono">{podName ?? 'your pod'}</strong> will be deleted. Kubernetes
          starts a replacement and the gateway moves your connection to it; watch the chart and
          the timeline.
        </p>
      </ConfirmDialog>
    </>
  );
}
