import { useEffect, useRef, useState } from "react";
import { checkPhoto } from "../lib/photo";
import type { Picked } from "./ImagePicker";

/** What the browser can show of a photo: its URL, or an object URL of the file (made
 * here, revoked when the photo goes); undefined when it cannot be shown (TIFF). */
export function usePreview(photo: Picked | undefined): string | undefined {
  const [preview, setPreview] = useState<string | undefined>();
  useEffect(() => {
    if (photo?.kind === "url") return setPreview(photo.url);
    if (!photo?.viewable) return setPreview(undefined);
    const url = URL.createObjectURL(photo.file);
    setPreview(url);
    return () => URL.revokeObjectURL(url);
  }, [photo]);
  return preview;
}

const nameOf = (photo: Picked) => (photo.kind === "url" ? photo.url : photo.file.name);

/** One photo of several as a small thumbnail, with a button to take it out of the query. */
export function PhotoThumb({ photo, label, onRemove }: { photo: Picked; label: string; onRemove: () => void }) {
  const preview = usePreview(photo);
  return (
    <li className="photo-thumb" data-testid="photo-thumb">
      {preview ? <img src={preview} alt={label} title={nameOf(photo)} /> : <span className="photo-name">{nameOf(photo)}</span>}
      <button type="button" className="remove" aria-label={`Remove ${label.toLowerCase()}`} onClick={onRemove}>
        ×
      </button>
    </li>
  );
}

/** "Add another photo": a file chosen here joins the query (checked first, like the
 * first photo, so a file that is not an image is refused by name). */
export function AddPhoto({ onAdd, disabled = false }: { onAdd: (photo: Picked) => void; disabled?: boolean }) {
  const [error, setError] = useState<string | null>(null);
  const input = useRef<HTMLInputElement>(null);
  const take = async (file: File | undefined) => {
    if (!file) return;
    const check = await checkPhoto(file);
    setError(check.ok ? null : check.problem);
    if (check.ok) onAdd({ kind: "file", file, viewable: check.viewable });
  };
  return (
    <div className="add-photo">
      <button type="button" className="secondary" disabled={disabled} onClick={() => input.current?.click()}>
        Add another photo
      </button>
      <input
        ref={input}
        type="file"
        accept="image/*"
        hidden
        data-testid="add-photo-input"
        onChange={(e) => {
          take(e.target.files?.[0]);
          e.target.value = ""; // the same file again is a change too
        }}
      />
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
    </div>
  );
}
