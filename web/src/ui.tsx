import type { ComponentChildren, JSX, RefObject } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiFailure } from './api.ts';
import { placeErrors, type PlacedErrors } from './errors.ts';

/** Puts the keyboard in a dialog when it opens. */
export function useFocusFirst<T extends HTMLElement>(): RefObject<T> {
  const ref = useRef<T>(null);
  useEffect(() => {
    ref.current?.querySelector<HTMLElement>('input, select, button')?.focus();
  }, []);
  return ref;
}

/** A part of the page that takes the keyboard when it appears (an inline dialog). */
export function FocusIn({ children }: { children: ComponentChildren }) {
  const ref = useFocusFirst<HTMLDivElement>();
  return <div ref={ref}>{children}</div>;
}

let ids = 0;
const nextId = () => `f${++ids}`;

/** A labelled input with its hint and its errors, tied to it for screen readers. */
interface FieldProps {
  label: string;
  name: string;
  errors?: PlacedErrors;
  hint?: string;
  /** a control other than an input: given the id to take and what describes it */
  children?: (id: string, described: string) => JSX.Element;
}

export function Field(props: FieldProps & Omit<JSX.InputHTMLAttributes<HTMLInputElement>, 'children'>) {
  const [id] = useState(nextId);
  const { label, name, errors, hint, children, ...rest } = props;
  const msgs = errors?.fields[name] ?? [];
  const described = [hint ? `${id}-hint` : '', msgs.length ? `${id}-err` : ''].filter(Boolean).join(' ');
  return (
    <div class={`field${msgs.length ? ' invalid' : ''}`}>
      <label for={id}>{label}</label>
      {children ? (
        children(id, described)
      ) : (
        <input id={id} name={name} aria-invalid={msgs.length ? 'true' : undefined} aria-describedby={described || undefined} {...rest} />
      )}
      {hint && <small id={`${id}-hint`}>{hint}</small>}
      {msgs.length > 0 && (
        <p class="error" id={`${id}-err`} data-field={name}>
          {msgs.join(' ')}
        </p>
      )}
    </div>
  );
}

export function GeneralErrors({ errors }: { errors?: PlacedErrors | null }) {
  if (!errors?.general.length) return null;
  return (
    <div role="alert" class="error">
      {errors.general.map((m) => (
        <p>{m}</p>
      ))}
    </div>
  );
}

/** Errors of a failed call placed on the form's fields (anything else goes above the form). */
export function failureErrors(e: unknown, fields: string[], aliases: Record<string, string> = {}): PlacedErrors {
  if (e instanceof ApiFailure) return placeErrors(e.errors, fields, aliases);
  return { fields: {}, general: [(e as Error).message] };
}

/** A line saying what just happened, read out by screen readers. */
export function Status({ children }: { children?: ComponentChildren }) {
  return (
    <p role="status" class="status">
      {children}
    </p>
  );
}

export function Table({ caption, head, children }: { caption: string; head: string[]; children: ComponentChildren }) {
  return (
    <table>
      <caption>{caption}</caption>
      <thead>
        <tr>
          {head.map((h) => (
            <th scope="col">{h}</th>
          ))}
        </tr>
      </thead>
      <tbody>{children}</tbody>
    </table>
  );
}

export const formatBytes = (n: number): string => {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${Number.isInteger(n) ? n : n.toFixed(1)} ${units[i]}`;
};

export function Pager({ offset, limit, total, onPage }: { offset: number; limit: number; total: number; onPage: (offset: number) => void }) {
  if (total <= limit) return <p class="pager">{total === 1 ? '1 object' : `${total} objects`}</p>;
  return (
    <nav class="pager" aria-label="Pages">
      <button type="button" disabled={offset === 0} onClick={() => onPage(Math.max(0, offset - limit))}>
        Previous page
      </button>
      <span>
        {offset + 1}–{Math.min(offset + limit, total)} of {total}
      </span>
      <button type="button" disabled={offset + limit >= total} onClick={() => onPage(offset + limit)}>
        Next page
      </button>
    </nav>
  );
}
