import { useEffect, useRef, useState } from "react";
import { checkPhoto } from "../lib/photo";

/** A photo to search: a file (`viewable` when this browser can show it) or a URL. */
export type Picked = { kind: "file"; file: File; viewable: boolean } | { kind: "url"; url: string };

/** Every way to give a photo: choose a file, drop it, paste it, take it with the
 * camera (phones), or paste an image URL. */
export function ImagePicker({ onPick }: { onPick: (picked: Picked) => void }) {
  const [error, setError] = useState<string | null>(null);
  const [dragging, setDragging] = useState(false);
  const [url, setUrl] = useState("");
  const input = useRef<HTMLInputElement>(null);
  const camera = useRef<HTMLInputElement>(null);

  const take = async (file: File | undefined | null) => {
    if (!file) return;
    const check = await checkPhoto(file);
    setError(check.ok ? null : check.problem);
    if (check.ok) onPick({ kind: "file", file, viewable: check.viewable });
  };

  useEffect(() => {
    const onPaste = (event: ClipboardEvent) => {
      const item = Array.from(event.clipboardData?.items ?? []).find((i) => i.kind === "file");
      if (item) take(item.getAsFile());
    };
    window.addEventListener("paste", onPaste);
    return () => window.removeEventListener("paste", onPaste);
  });

  return (
    <div className="picker">
      <div
        className={`dropzone${dragging ? " dragging" : ""}`}
        role="button"
        tabIndex={0}
        aria-label="Choose a photo, or drop one here"
        onClick={() => input.current?.click()}
        onKeyDown={(e) => (e.key === "Enter" || e.key === " ") && input.current?.click()}
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => {
          e.preventDefault();
          setDragging(false);
          take(e.dataTransfer.files[0]);
        }}
      >
        <strong>Drop a product photo here</strong>
        <span>or click to choose a file · paste with Ctrl+V</span>
      </div>
      <input
        ref={input}
        type="file"
        accept="image/*"
        hidden
        data-testid="file-input"
        onChange={(e) => take(e.target.files?.[0])}
      />
      <input
        ref={camera}
        type="file"
        accept="image/*"
        capture="environment"
        hidden
        onChange={(e) => take(e.target.files?.[0])}
      />
      <div className="picker-row">
        <button type="button" className="secondary" onClick={() => camera.current?.click()}>
          Take a photo
        </button>
        <form
          className="url-form"
          onSubmit={(e) => {
            e.preventDefault();
            if (!/^https?:\/\//i.test(url)) {
              setError("Give an http(s) image URL.");
              return;
            }
            setError(null);
            onPick({ kind: "url", url });
          }}
        >
          <input
            type="url"
            placeholder="…or paste an image URL"
            aria-label="Image URL"
            value={url}
            onChange={(e) => setUrl(e.target.value)}
          />
          <button type="submit" className="secondary">
            Use URL
          </button>
        </form>
      </div>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
    </div>
  );
}
